package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Names is the engine's view of names for one container.
type Names interface {
	// LookupIPv4 returns the IPv4 addresses of name (already lower-cased,
	// without the trailing dot) as seen from the container; ok is false
	// when the engine does not know the name, and the query is forwarded.
	LookupIPv4(name string) (addrs []netip.Addr, ok bool)
	// LookupPTR returns the name for addr; ok false when unknown (then
	// forwarded).
	LookupPTR(addr netip.Addr) (name string, ok bool)
}

// Config is what a [Handler] answers from and forwards to.
type Config struct {
	// Names answers the engine's names; nil knows no name.
	Names Names
	// Upstreams are the resolvers queries for other names are forwarded
	// to, tried in order; none: unknown names get SERVFAIL.
	Upstreams []netip.AddrPort
	// Logger receives the failures of forwarding and answering, at debug
	// level (a container can cause them at will); nil: slog.Default().
	Logger *slog.Logger
}

const (
	// localTTL is the TTL of the records the engine answers itself, as
	// dockerd's embedded server gives them.
	localTTL = 600
	// upstreamTimeout bounds one exchange with one upstream resolver.
	upstreamTimeout = 2 * time.Second
	// maxForwards bounds the queries being forwarded at once, so a flood
	// from a container cannot exhaust the engine; a query beyond it gets
	// SERVFAIL at once.
	maxForwards = 100
	// ednsSize is the UDP payload size the server reads queries with and
	// advertises in the answers it gives itself.
	ednsSize = dns.DefaultMsgSize
)

// Handler answers DNS queries as the embedded server does: the engine's
// names from [Names], everything else from the upstream resolvers. It is a
// [dns.Handler], needs no privilege and can serve any listener; [Listen]
// serves it inside a container's network namespace.
//
// For a query of class IN:
//   - A for a name Names knows: its IPv4 addresses, TTL 600;
//   - any other type for a name Names knows: NOERROR and no answer, so
//     that a resolver does not take the name for nonexistent;
//   - PTR for an in-addr.arpa or ip6.arpa name of an address Names knows:
//     its name.
//
// Every other query is forwarded unchanged but for its ID to the upstreams
// in order, over the protocol the client used (a truncated UDP answer is
// asked again over TCP); the first answer that is neither SERVFAIL nor
// REFUSED is the reply, with the client's ID. No upstream, none answering,
// or too many queries in flight: SERVFAIL. A message with other than one
// question gets FORMERR, one with an opcode other than QUERY gets NOTIMP.
// Answers the handler gives itself are not authoritative and offer
// recursion.
type Handler struct {
	names     Names
	upstreams []netip.AddrPort
	log       *slog.Logger
	// ctx ends the forwards in flight when cancelled (when the server
	// serving the handler closes).
	ctx     context.Context
	timeout time.Duration
	// forwards holds a token per query being forwarded.
	forwards chan struct{}
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler returns a handler answering from cfg.
func NewHandler(cfg Config) *Handler {
	return newHandler(context.Background(), cfg)
}

func newHandler(ctx context.Context, cfg Config) *Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{
		names:     cfg.Names,
		upstreams: slices.Clone(cfg.Upstreams),
		log:       log,
		ctx:       ctx,
		timeout:   upstreamTimeout,
		forwards:  make(chan struct{}, maxForwards),
	}
}

// ServeDNS answers r on w.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	tcp := isTCP(w)
	reply := h.reply(r, tcp)
	reply.Id = r.Id
	if !tcp {
		// An answer asked again over TCP, or many addresses of a name, may
		// not fit what the client reads; Truncate sets TC when it drops.
		reply.Truncate(udpSize(r))
	}
	if err := w.WriteMsg(reply); err != nil {
		h.log.Debug("dns: write the reply", "client", w.RemoteAddr(), "question", questionOf(r), "err", err)
	}
}

func (h *Handler) reply(r *dns.Msg, tcp bool) *dns.Msg {
	if r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented)
		m.RecursionAvailable = true
		return m
	}
	if len(r.Question) != 1 {
		m := new(dns.Msg).SetRcodeFormatError(r)
		m.RecursionAvailable = true
		return m
	}
	if m := h.local(r); m != nil {
		return m
	}
	return h.forward(r, tcp)
}

// local answers r from the engine's names, or returns nil when they do not
// know the name asked.
func (h *Handler) local(r *dns.Msg) *dns.Msg {
	q := r.Question[0]
	if q.Qclass != dns.ClassINET || h.names == nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if name == "" {
		return nil
	}
	if q.Qtype == dns.TypePTR {
		if addr, ok := reverseAddr(name); ok {
			ptr, known := h.names.LookupPTR(addr)
			if !known {
				return nil
			}
			ptr = dns.Fqdn(ptr)
			if _, ok := dns.IsDomainName(ptr); !ok {
				h.log.Debug("dns: the engine's name for an address is no domain name", "addr", addr, "name", ptr)
				return h.servfail(r)
			}
			m := h.answer(r)
			m.Answer = append(m.Answer, &dns.PTR{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: localTTL},
				Ptr: ptr,
			})
			return m
		}
	}
	addrs, known := h.names.LookupIPv4(name)
	if !known {
		return nil
	}
	m := h.answer(r)
	if q.Qtype != dns.TypeA {
		return m
	}
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() {
			continue
		}
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: localTTL},
			A:   a.AsSlice(),
		})
	}
	return m
}

// answer starts the reply the handler gives r itself.
func (h *Handler) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = false
	m.RecursionAvailable = true
	if r.IsEdns0() != nil {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

func (h *Handler) servfail(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// forward asks the upstreams r, over TCP when tcp is true.
func (h *Handler) forward(r *dns.Msg, tcp bool) *dns.Msg {
	if len(h.upstreams) == 0 {
		return h.servfail(r)
	}
	select {
	case h.forwards <- struct{}{}:
		defer func() { <-h.forwards }()
	default:
		h.log.Debug("dns: too many queries being forwarded; answering SERVFAIL", "limit", maxForwards, "question", questionOf(r))
		return h.servfail(r)
	}
	// A fresh ID: the client's is the client's business, and a random one
	// makes forged answers harder to slip in.
	query := r.Copy()
	query.Id = dns.Id()
	var last *dns.Msg
	for _, up := range h.upstreams {
		if h.ctx.Err() != nil {
			break
		}
		resp, err := h.exchange(query, up, tcp)
		if err != nil {
			h.log.Debug("dns: forward a query", "upstream", up, "question", questionOf(r), "err", err)
			continue
		}
		switch resp.Rcode {
		case dns.RcodeServerFailure, dns.RcodeRefused:
			// As dockerd: the next upstream may well answer.
			last = resp
			continue
		}
		return resp
	}
	if last != nil {
		return last
	}
	return h.servfail(r)
}

// exchange asks up query over the client's protocol, and once more over
// TCP when a UDP answer comes back truncated; when that fails the truncated
// answer stands, and the client may ask again over TCP itself.
func (h *Handler) exchange(query *dns.Msg, up netip.AddrPort, tcp bool) (*dns.Msg, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	resp, err := h.exchangeOver(network, query, up)
	if err != nil || !resp.Truncated || tcp {
		return resp, err
	}
	full, err := h.exchangeOver("tcp", query, up)
	if err != nil {
		h.log.Debug("dns: ask again over TCP after a truncated answer", "upstream", up, "question", questionOf(query), "err", err)
		return resp, nil
	}
	return full, nil
}

// exchangeOver asks up query over network ("udp" or "tcp"), within the
// handler's timeout. The socket is made here, on an ordinary goroutine:
// in the engine's network namespace.
func (h *Handler) exchangeOver(network string, query *dns.Msg, up netip.AddrPort) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	c := &dns.Client{Net: network, UDPSize: dns.MaxMsgSize, Timeout: h.timeout}
	co, err := c.DialContext(ctx, up.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, up, err)
	}
	defer co.Close()
	// The client only heeds the context's deadline; closing the socket
	// ends a read when the server closes.
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, query, co)
	if err != nil {
		return nil, fmt.Errorf("exchange with %s over %s: %w", up, network, err)
	}
	if !answers(resp, query) {
		return nil, fmt.Errorf("the answer of %s over %s is for another question than %s", up, network, questionOf(query))
	}
	return resp, nil
}

// answers reports whether resp is an answer to query's question. An error
// answer may leave the question out.
func answers(resp, query *dns.Msg) bool {
	if len(resp.Question) == 0 {
		return resp.Rcode != dns.RcodeSuccess
	}
	if len(resp.Question) != 1 {
		return false
	}
	a, q := resp.Question[0], query.Question[0]
	return a.Qtype == q.Qtype && a.Qclass == q.Qclass && strings.EqualFold(a.Name, q.Name)
}

// reverseAddr returns the address an in-addr.arpa or ip6.arpa name (lower
// case, no trailing dot) stands for; ok is false for any other name.
func reverseAddr(name string) (addr netip.Addr, ok bool) {
	if rest, found := strings.CutSuffix(name, ".in-addr.arpa"); found {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		slices.Reverse(labels)
		a, err := netip.ParseAddr(strings.Join(labels, "."))
		if err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	}
	if rest, found := strings.CutSuffix(name, ".ip6.arpa"); found {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			// The first label is the lowest nibble.
			n := 31 - i
			if n%2 == 0 {
				b[n/2] |= byte(v) << 4
			} else {
				b[n/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// udpSize is how large an answer over UDP r's client reads.
func udpSize(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil && opt.UDPSize() > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.LocalAddr().(*net.TCPAddr)
	return ok
}

// questionOf describes r's question for a log line.
func questionOf(r *dns.Msg) string {
	if len(r.Question) == 0 {
		return "(none)"
	}
	q := r.Question[0]
	return q.Name + " " + dns.Class(q.Qclass).String() + " " + dns.Type(q.Qtype).String()
}
