package sysproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Read returns the proxies of this Linux session: the environment's
// (FromEnv) when it names one, else GNOME's (ParseGSettings) when
// gsettings is installed. Without either it is the zero Proxy and no
// error, as it is when gsettings has no org.gnome.system.proxy schema.
func Read(ctx context.Context) (Proxy, error) {
	if p := FromEnv(os.Getenv); !p.IsZero() {
		return p, nil
	}
	gsettings, err := exec.LookPath("gsettings")
	if err != nil {
		return Proxy{}, nil
	}
	get := func(schema, key string) (string, error) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, gsettings, "get", schema, key)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", &gsettingsError{schema: schema, key: key, stderr: strings.TrimSpace(stderr.String()), err: err}
		}
		return strings.TrimSpace(string(out)), nil
	}
	const schema = "org.gnome.system.proxy"
	mode, err := get(schema, "mode")
	if err != nil {
		var ge *gsettingsError
		if errors.As(err, &ge) && strings.Contains(ge.stderr, "No such schema") {
			return Proxy{}, nil
		}
		return Proxy{}, err
	}
	if unquoteGVariant(mode) != "manual" {
		return Proxy{}, nil
	}
	var vals [5]string
	for i, k := range []struct{ schema, key string }{
		{schema + ".http", "host"}, {schema + ".http", "port"},
		{schema + ".https", "host"}, {schema + ".https", "port"},
		{schema, "ignore-hosts"},
	} {
		if vals[i], err = get(k.schema, k.key); err != nil {
			return Proxy{}, err
		}
	}
	ports := [2]int{}
	for i, s := range []string{vals[1], vals[3]} {
		// gsettings prints an int32 plainly ("3128"); older ones may
		// prefix the type ("int32 3128").
		s = strings.TrimSpace(strings.TrimPrefix(s, "int32"))
		if ports[i], err = strconv.Atoi(s); err != nil {
			return Proxy{}, fmt.Errorf("sysproxy: gsettings port %q: %w", s, err)
		}
	}
	return ParseGSettings(mode, vals[0], ports[0], vals[2], ports[1], vals[4]), nil
}

// gsettingsError is a `gsettings get` that failed, with what it printed.
type gsettingsError struct {
	schema, key, stderr string
	err                 error
}

func (e *gsettingsError) Error() string {
	msg := fmt.Sprintf("sysproxy: gsettings get %s %s: %v", e.schema, e.key, e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *gsettingsError) Unwrap() error { return e.err }
