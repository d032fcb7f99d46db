// Package link owns the guest end of the host <-> guest channel described in
// docs/CHANNEL.md: the two transports (vsock listeners, and yamux sessions
// over the "berth.link" virtio-serial port), the dispatch of each connection
// to its port's service (2375 Docker API splice, 1024 control API, 1025
// tunnel), the control API server, and the PortEventSource interface through
// which the engine announces published and withdrawn ports.
package link
