// Package dns owns the embedded DNS server containers on user-defined
// networks query at 127.0.0.11: it answers the engine's names (the A
// records of containers and their aliases, and the PTR records of their
// addresses) and forwards the rest to the upstream resolvers, as dockerd's
// embedded DNS server does.
//
// [Handler] is the protocol part: a [github.com/miekg/dns.Handler] that
// needs no privilege and no namespace, so it can be tested and fuzzed on
// its own. [Listen] opens the server's UDP and TCP sockets inside a
// container's network namespace and serves the handler on them, while the
// queries it forwards leave from the engine's own namespace.
package dns
