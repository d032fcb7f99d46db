//go:build linux

package engine

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestProxyEnvAddTo(t *testing.T) {
	all := ProxyEnv{HTTP: "http://p:3128", HTTPS: "http://s:3129", NoProxy: "localhost,.local"}
	tests := []struct {
		name string
		p    ProxyEnv
		env  []string
		want []string
	}{
		{name: "zero", p: ProxyEnv{}, env: []string{"A=1"}, want: []string{"A=1"}},
		{name: "all", p: all, env: []string{"A=1"}, want: []string{"A=1",
			"HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128",
			"HTTPS_PROXY=http://s:3129", "https_proxy=http://s:3129",
			"NO_PROXY=localhost,.local", "no_proxy=localhost,.local"}},
		{name: "http only", p: ProxyEnv{HTTP: "http://p:3128"}, env: nil,
			want: []string{"HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128"}},
		{name: "user's lower case keeps both out", p: all, env: []string{"http_proxy=x"}, want: []string{"http_proxy=x",
			"HTTPS_PROXY=http://s:3129", "https_proxy=http://s:3129",
			"NO_PROXY=localhost,.local", "no_proxy=localhost,.local"}},
		{name: "user's upper case keeps both out", p: all, env: []string{"HTTPS_PROXY=", "NO_PROXY"}, want: []string{"HTTPS_PROXY=", "NO_PROXY",
			"HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128"}},
		{name: "other names untouched", p: ProxyEnv{HTTP: "h"}, env: []string{"XHTTP_PROXY=1", "FTP_PROXY=f"},
			want: []string{"XHTTP_PROXY=1", "FTP_PROXY=f", "HTTP_PROXY=h", "http_proxy=h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := slices.Clip(slices.Clone(tt.env))
			before := slices.Clone(env)
			if got := tt.p.addTo(env); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !slices.Equal(env, before) {
				t.Errorf("the given env changed: %q", env)
			}
		})
	}
}

// TestContainerCreateProxyEnv checks that the proxies land in the stored
// Config.Env (what docker inspect shows) beside the image's and the user's
// variables, that the caller's request is not written to, and that the
// image's own HTTP_PROXY gives way as the user's -e would.
func TestContainerCreateProxyEnv(t *testing.T) {
	e, _, imgs := newTestEngine(t, "")
	e.cfg.ContainerProxy = ProxyEnv{HTTP: "http://p:3128", NoProxy: "localhost"}
	img, _ := imgs.Resolve("busybox")
	img.Config.Config.Env = append(slices.Clip(img.Config.Config.Env), "HTTP_PROXY=http://image:1")

	userEnv := make([]string, 1, 8) // room to append into: the engine must not
	userEnv[0] = "A=1"
	id := create(t, e, "", container.Config{Env: userEnv}, nil)
	ins, err := e.ContainerInspect(bg, id, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMG=1",
		"HTTP_PROXY=http://p:3128", "A=1", "http_proxy=http://p:3128", "NO_PROXY=localhost", "no_proxy=localhost"}
	if !slices.Equal(ins.Config.Env, want) {
		t.Errorf("Config.Env = %q, want %q", ins.Config.Env, want)
	}
	if got := userEnv[:cap(userEnv)][1]; got != "" {
		t.Errorf("the request's Env was written to: %q", got)
	}

	id = create(t, e, "", container.Config{Env: []string{"http_proxy=x"}}, nil)
	ins, err = e.ContainerInspect(bg, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ins.Config.Env, "http_proxy=http://p:3128") || !slices.Contains(ins.Config.Env, "http_proxy=x") ||
		!slices.Contains(ins.Config.Env, "NO_PROXY=localhost") {
		t.Errorf("with the user's http_proxy, Config.Env = %q", ins.Config.Env)
	}
}
