package forward

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	winio "github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// listenHost is the host end of a forwarded port: the unix socket at path
// and, for the Docker API, the named pipe the Windows docker CLI dials by
// default (DefaultDockerPipe). The pipe is a convenience: when another
// engine holds it, the socket is served without it (the "berth" context
// still reaches it) and a warning says so.
func listenHost(path string, port uint32, log *slog.Logger) (net.Listener, error) {
	ln, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	if port != portDocker {
		return ln, nil
	}
	name, err := dockerPipeName(os.Getenv)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if name == "" {
		return ln, nil
	}
	pln, err := listenPipe(name)
	if err != nil {
		log.Warn("the docker named pipe is not served; the docker context \"berth\" still works", "pipe", name, "err", err)
		return ln, nil
	}
	log.Info("docker named pipe", "pipe", name)
	return newMultiListener(ln, pln), nil
}

// listenPipe serves the named pipe name to the current user only, in
// message mode as dockerd does, so that a zero-byte write carries the
// half-close that attach and exec need.
func listenPipe(name string) (net.Listener, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("named pipe %s: the current user: %w", name, err)
	}
	sddl, err := pipeSDDL(u.User.Sid.String())
	if err != nil {
		return nil, fmt.Errorf("named pipe %s: %w", name, err)
	}
	ln, err := winio.ListenPipe(name, &winio.PipeConfig{
		SecurityDescriptor: sddl,
		MessageMode:        true,
		InputBufferSize:    64 << 10,
		OutputBufferSize:   64 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("listen on named pipe %s: %w", name, err)
	}
	return ln, nil
}
