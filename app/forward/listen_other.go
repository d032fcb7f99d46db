//go:build !windows

package forward

import (
	"log/slog"
	"net"
)

// listenHost is the host end of a forwarded port: the unix socket at path.
func listenHost(path string, _ uint32, _ *slog.Logger) (net.Listener, error) {
	return listenUnix(path)
}
