package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// testServer is a Server on a unix socket in a temp dir.
type testServer struct {
	srv  *Server
	sock string
	http *http.Client
}

func startServer(t *testing.T, b *fakeBackend) *testServer {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{EngineVersion: "0.1.0-test", System: b, Containers: b, Exec: b, Images: b, Logger: quietLogger()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	return &testServer{srv: srv, sock: sock, http: hc}
}

// client returns a moby API client that negotiates its version.
func (ts *testServer) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://"+ts.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends a raw request and returns the response with its body read.
func (ts *testServer) do(t *testing.T, method, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
		req.ContentLength = 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var e common.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Message
}

func TestPing(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, path := range []string{"/_ping", "/v1.50/_ping", "/v1.24/_ping"} {
			t.Run(method+path, func(t *testing.T) {
				resp, body := ts.do(t, method, path, "", "")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				want := "OK"
				if method == http.MethodHead {
					want = ""
				}
				if body != want {
					t.Errorf("body %q, want %q", body, want)
				}
				for k, v := range map[string]string{
					"API-Version":         APIVersion,
					"Builder-Version":     "1",
					"Docker-Experimental": "false",
					"OSType":              "linux",
					"Cache-Control":       "no-cache, no-store, must-revalidate",
					"Pragma":              "no-cache",
					"Server":              "Docker/0.1.0-test (linux)",
				} {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
			})
		}
	}
}

func TestPingWithClient(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	c := ts.client(t)
	p, err := c.Ping(context.Background(), client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != APIVersion || p.OSType != "linux" || p.Experimental {
		t.Errorf("ping = %+v", p)
	}
}

func TestVersionNegotiation(t *testing.T) {
	b := &fakeBackend{version: func(context.Context) (system.VersionResponse, error) {
		return system.VersionResponse{Version: "0.1.0-test", APIVersion: APIVersion, MinAPIVersion: MinAPIVersion, Os: "linux"}, nil
	}}
	ts := startServer(t, b)
	tests := []struct {
		path      string
		status    int
		message   string // JSON message; "" for success
		plainText string // plain-text body of very old clients
	}{
		{path: "/version", status: 200},
		{path: "/v1.51/version", status: 200},
		{path: "/v1.50/version", status: 200},
		{path: "/v1.24/version", status: 200},
		{path: "/v1.99/version", status: 400, message: "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{path: "/v1.52/version", status: 400, message: "client version 1.52 is too new. Maximum supported API version is 1.51"},
		{path: "/v2.0/version", status: 400, message: "client version 2.0 is too new. Maximum supported API version is 1.51"},
		{path: "/v1.12/version", status: 400, plainText: "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := ts.do(t, http.MethodGet, tt.path, "", "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if resp.Header.Get("Api-Version") != APIVersion {
				t.Errorf("Api-Version header %q", resp.Header.Get("Api-Version"))
			}
			switch {
			case tt.message != "":
				if got := errorMessage(t, body); got != tt.message {
					t.Errorf("message %q, want %q", got, tt.message)
				}
			case tt.plainText != "":
				if body != tt.plainText {
					t.Errorf("body %q, want %q", body, tt.plainText)
				}
			default:
				var v system.VersionResponse
				if err := json.Unmarshal([]byte(body), &v); err != nil || v.Version != "0.1.0-test" {
					t.Errorf("version body %q: %v", body, err)
				}
			}
		})
	}
}

func TestPageNotFound(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	tests := []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/v1.50/nope"},
		{"GET", "/v1.99/nope"},
		{"PUT", "/containers/json"},
		{"GET", "/containers/json/"},
		{"GET", "/containers/abc/start"},
		{"POST", "/_ping"},
		{"GET", "/v1.50"},
		{"GET", "/v/containers/json"},
		{"GET", "/containers//json"},
		{"GET", "/images//json"},
		{"GET", "/swarm"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.path, "", "")
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
			if body != "{\"message\":\"page not found\"}\n" {
				t.Errorf("body %q", body)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

type wrappedErr struct{ err error }

func (w wrappedErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrappedErr) Unwrap() error { return w.err }

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		is     func(error) bool
	}{
		{"not found", notFoundErr{"No such container: x"}, 404, cerrdefs.IsNotFound},
		{"invalid parameter", badParamErr{}, 400, cerrdefs.IsInvalidArgument},
		{"conflict", conflictErr{"name in use"}, 409, cerrdefs.IsConflict},
		{"forbidden", forbiddenErr{}, 403, cerrdefs.IsPermissionDenied},
		{"not implemented", notImplementedError{msg: "later"}, 501, cerrdefs.IsNotImplemented},
		{"unavailable", unavailErr{}, 503, cerrdefs.IsUnavailable},
		{"plain", errors.New("boom"), 500, cerrdefs.IsInternal},
		{"wrapped with %w", fmt.Errorf("inspect x: %w", notFoundErr{"No such container: x"}), 404, cerrdefs.IsNotFound},
		{"wrapped by type", wrappedErr{conflictErr{"busy"}}, 409, cerrdefs.IsConflict},
		{"joined", errors.Join(errors.New("a"), badParamErr{}), 400, cerrdefs.IsInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{inspect: func(context.Context, string, bool) (*container.InspectResponse, error) {
				return nil, tt.err
			}}
			ts := startServer(t, b)
			resp, body := ts.do(t, http.MethodGet, "/v1.50/containers/x/json", "", "")
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := errorMessage(t, body); got != tt.err.Error() {
				t.Errorf("message %q, want %q", got, tt.err.Error())
			}
			_, err := ts.client(t).ContainerInspect(context.Background(), "x", client.ContainerInspectOptions{})
			if err == nil || !tt.is(err) {
				t.Errorf("client error %v does not classify as wanted", err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.err.Error()) {
				t.Errorf("client error %q lacks %q", err, tt.err.Error())
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	b := &fakeBackend{start: func(context.Context, string) error { return notModifiedErr{} }}
	ts := startServer(t, b)
	resp, body := ts.do(t, http.MethodPost, "/v1.50/containers/x/start", "", "")
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("status %d body %q, want 304 with no body", resp.StatusCode, body)
	}
}

func TestMissingBackendIsUnavailable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Logger: quietLogger()})
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.ContainerList(context.Background(), client.ContainerListOptions{})
	if !cerrdefs.IsUnavailable(err) {
		t.Errorf("list without a container backend: %v, want 503", err)
	}
}

// quietLogger drops the server's log: the tests check responses.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
