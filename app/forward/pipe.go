package forward

import (
	"fmt"
	"strings"
)

// DefaultDockerPipe is the named pipe the Windows docker CLI connects to
// when neither DOCKER_HOST nor a context names another: Berth serves the
// docker socket there too, so the CLI works without the "berth" context.
const DefaultDockerPipe = `\\.\pipe\docker_engine`

// dockerPipeName is the named pipe to serve the docker socket on, from
// BERTH_DOCKER_PIPE (getenv): unset or empty is DefaultDockerPipe, "off"
// is none (another engine keeps the pipe; tests), anything else must be a
// pipe path \\.\pipe\NAME.
func dockerPipeName(getenv func(string) string) (string, error) {
	v := getenv("BERTH_DOCKER_PIPE")
	switch {
	case v == "":
		return DefaultDockerPipe, nil
	case v == "off":
		return "", nil
	}
	name, ok := strings.CutPrefix(v, `\\.\pipe\`)
	if !ok || name == "" || strings.ContainsAny(name, `\/`) {
		return "", fmt.Errorf("BERTH_DOCKER_PIPE %q is not a named pipe path \\\\.\\pipe\\NAME (or off)", v)
	}
	return v, nil
}

// pipeSDDL is the security descriptor of the docker pipe: full access for
// the user whose SID is given and no one else, as the unix socket's mode
// 0600 (protected, so nothing is inherited).
func pipeSDDL(userSID string) (string, error) {
	if !strings.HasPrefix(userSID, "S-1-") || strings.ContainsAny(userSID, "();: \t") {
		return "", fmt.Errorf("docker pipe security descriptor: %q is not a SID", userSID)
	}
	return "D:P(A;;GA;;;" + userSID + ")", nil
}
