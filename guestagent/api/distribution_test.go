package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// pullBackend is a fake ImageBackend that also pulls and pushes.
type pullBackend struct {
	*fakeBackend
	ref  string
	opts PullOptions
	push []string
	auth *AuthConfig
}

func (p *pullBackend) ImagePull(ctx context.Context, ref string, opts PullOptions, out io.Writer) error {
	p.ref, p.opts = ref, opts
	_, err := io.WriteString(out, `{"status":"Digest: sha256:00"}`+"\n")
	return err
}

func (p *pullBackend) ImagePush(ctx context.Context, name, tag string, auth *AuthConfig, out io.Writer) error {
	p.push = []string{name, tag}
	p.auth = auth
	return nil
}

func TestPullAndPushRequests(t *testing.T) {
	b := &pullBackend{fakeBackend: &fakeBackend{}}
	srv := New(Config{Images: b, Logger: quietLogger()})
	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p","serveraddress":"r.test"}`))
	tests := []struct {
		query, ref, platform string
		all                  bool
	}{
		{"fromImage=busybox&tag=latest", "busybox:latest", "", false},
		{"fromImage=busybox&tag=sha256:" + strings.Repeat("a", 64), "busybox@sha256:" + strings.Repeat("a", 64), "", false},
		{"fromImage=busybox", "busybox", "", true},
		{"fromImage=localhost:5000/x&platform=linux/arm64", "localhost:5000/x", "linux/arm64", true},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("POST", "/v1.51/images/create?"+tt.query, nil)
		req.Header.Set("X-Registry-Auth", auth)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.query, w.Code, w.Body)
		}
		if b.ref != tt.ref || b.opts.Platform != tt.platform || b.opts.AllTags != tt.all {
			t.Errorf("%s: pulled %q %+v", tt.query, b.ref, b.opts)
		}
		if b.opts.Auth == nil || b.opts.Auth.Username != "u" || b.opts.Auth.Password != "p" {
			t.Errorf("%s: auth %+v", tt.query, b.opts.Auth)
		}
	}
	req := httptest.NewRequest("POST", "/v1.51/images/r.test/x/push?tag=v1", nil)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != http.StatusOK || b.push[0] != "r.test/x" || b.push[1] != "v1" || b.auth != nil {
		t.Errorf("push: %d %q %+v", w.Code, b.push, b.auth)
	}
	req = httptest.NewRequest("POST", "/v1.51/images/x/push", nil)
	req.Header.Set("X-Registry-Auth", "!!!not base64")
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest {
		t.Errorf("push with a broken auth header: %d %s", w.Code, w.Body)
	}
}

type loginBackend struct{ got AuthConfig }

func (l *loginBackend) Login(ctx context.Context, a AuthConfig) (registry.AuthResponse, error) {
	l.got = a
	if a.Password != "good" {
		return registry.AuthResponse{}, unauthorized{}
	}
	return registry.AuthResponse{Status: "Login Succeeded"}, nil
}

func (l *loginBackend) DistributionInspect(ctx context.Context, ref string, auth *AuthConfig) (*registry.DistributionInspect, error) {
	return &registry.DistributionInspect{}, nil
}

type unauthorized struct{}

func (unauthorized) Error() string { return "unauthorized: bad credentials" }
func (unauthorized) Unauthorized() {}

func TestAuth(t *testing.T) {
	lb := &loginBackend{}
	srv := New(Config{Registry: lb, Logger: quietLogger()})
	for _, tt := range []struct {
		pass   string
		status int
	}{{"good", 200}, {"bad", 401}} {
		body, _ := json.Marshal(AuthConfig{Username: "u", Password: tt.pass, ServerAddress: "r.test"})
		req := httptest.NewRequest("POST", "/v1.51/auth", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != tt.status || lb.got.ServerAddress != "r.test" {
			t.Errorf("login with %s: %d %s", tt.pass, w.Code, w.Body)
		}
	}
}

func TestDecodeAuthHeader(t *testing.T) {
	js := `{"username":"u","password":"p"}`
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding} {
		a, err := decodeAuthHeader(enc.EncodeToString([]byte(js)))
		if err != nil || a == nil || a.Username != "u" || a.Password != "p" {
			t.Errorf("decode: %+v %v", a, err)
		}
	}
	if a, err := decodeAuthHeader(""); a != nil || err != nil {
		t.Errorf("empty header: %+v %v", a, err)
	}
	if _, err := decodeAuthHeader("%%%"); err == nil {
		t.Error("broken base64 accepted")
	}
}

func FuzzDecodeAuthHeader(f *testing.F) {
	f.Add(base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`)))
	f.Add("")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := decodeAuthHeader(h)
		if err != nil && a != nil {
			t.Fatal("both credentials and an error")
		}
	})
}
