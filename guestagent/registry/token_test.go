package registry

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/reference"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
)

// TestBearerTokenFlow: a registry that wants bearer tokens from a token
// service, which checks basic credentials and records the scopes asked.
func TestBearerTokenFlow(t *testing.T) {
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	var scopes []string
	tokens := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "me" || p != "pw" {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		scopes = append(scopes, r.URL.Query()["scope"]...)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + r.URL.Query().Get("service")})
	})
	// The token service shares the registry's host and port (the
	// protocol library refuses realms on other private addresses).
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			tokens.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-test" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	c := newClient(t, Config{})
	good := &registrytypes.AuthConfig{Username: "me", Password: "pw"}
	ref, _ := reference.ParseNormalizedNamed(host + "/t/img:v1")
	img, _ := random.Image(256, 1)
	// Push through the client, then pull it back.
	layers, _ := img.Layers()
	l := layers[0]
	d, _ := l.Digest()
	cfg, _ := img.RawConfigFile()
	rc := func() (io.ReadCloser, error) { return l.Compressed() }
	sz, _ := l.Size()
	_, err := c.Push(context.Background(), ref.(reference.NamedTagged), good, cfg, []PushLayer{{DiffID: digestOf(d.String()), Size: sz, Open: rc}}, func(PushEvent) {})
	if err != nil {
		t.Fatalf("push with a token: %v", err)
	}
	if _, err := c.Resolve(context.Background(), ref, Platform{OS: "linux", Architecture: "amd64"}, good); err != nil {
		t.Fatalf("resolve with a token: %v", err)
	}
	mu.Lock()
	got := strings.Join(scopes, " ")
	mu.Unlock()
	if !strings.Contains(got, "repository:t/img:push,pull") || !strings.Contains(got, "repository:t/img:pull") {
		t.Errorf("scopes asked: %q", got)
	}
	// Anonymous and wrong credentials are refused.
	if _, err := c.Resolve(context.Background(), ref, Platform{OS: "linux", Architecture: "amd64"}, nil); err == nil {
		t.Error("anonymous pull from a token registry succeeded")
	}
	if _, err := c.Login(context.Background(), registrytypes.AuthConfig{Username: "me", Password: "bad", ServerAddress: host}); err == nil {
		t.Error("login with a bad password succeeded")
	}
	if resp, err := c.Login(context.Background(), registrytypes.AuthConfig{Username: "me", Password: "pw", ServerAddress: host}); err != nil || resp.Status != "Login Succeeded" {
		t.Errorf("login: %+v %v", resp, err)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
