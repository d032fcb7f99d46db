package api

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		raw     string
		want    Filters
		wantErr bool
	}{
		{raw: "", want: Filters{}},
		{raw: "  ", want: Filters{}},
		{raw: "{}", want: Filters{}},
		{raw: `{"status":{"running":true,"exited":true}}`, want: Filters{"status": {"exited", "running"}}},
		{raw: `{"label":{"a=b":true},"name":{"web":true}}`, want: Filters{"label": {"a=b"}, "name": {"web"}}},
		{raw: `{"status":["running","exited","running"]}`, want: Filters{"status": {"exited", "running"}}},
		{raw: `{"dangling":["true"]}`, want: Filters{"dangling": {"true"}}},
		{raw: `[1]`, wantErr: true},
		{raw: `{"a":1}`, wantErr: true},
		{raw: `{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := parseFilters(tt.raw)
			if tt.wantErr {
				if err == nil || statusFromError(err) != http.StatusBadRequest {
					t.Fatalf("err %v, want a 400 error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "0", want: time.Unix(0, 0)},
		{in: "1700000000", want: time.Unix(1700000000, 0)},
		{in: "1700000000.5", want: time.Unix(1700000000, 500000000)},
		{in: "1700000000.000000001", want: time.Unix(1700000000, 1)},
		{in: "1700000000.123456789", want: time.Unix(1700000000, 123456789)},
		{in: "-5.5", want: time.Unix(-5, -500000000)},
		{in: "1700000000.", wantErr: true},
		{in: "1700000000.1234567890", wantErr: true},
		{in: "1.-5", wantErr: true},
		{in: "10m", wantErr: true},
		{in: "2024-01-01T00:00:00Z", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTimestamp(tt.in)
			if tt.wantErr {
				if err == nil || statusFromError(err) != http.StatusBadRequest {
					t.Fatalf("err %v, want a 400 error", err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.51", "1.51", 0},
		{"1.9", "1.10", -1},
		{"1.50", "1.24", 1},
		{"2.0", "1.51", 1},
		{"1.51.0", "1.51", 0},
		{"1", "1.0", 0},
		{"1.24", "1.4", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSplitVersion(t *testing.T) {
	tests := []struct{ path, version, rest string }{
		{"/v1.50/containers/json", "1.50", "/containers/json"},
		{"/v1.50/_ping", "1.50", "/_ping"},
		{"/containers/json", "", "/containers/json"},
		{"/v1.50", "", "/v1.50"},
		{"/v/x", "", "/v/x"},
		{"/vx.1/x", "", "/vx.1/x"},
		{"/volumes", "", "/volumes"},
		{"/v1.50/", "1.50", "/"},
		{"", "", ""},
	}
	for _, tt := range tests {
		v, rest := splitVersion(tt.path)
		if v != tt.version || rest != tt.rest {
			t.Errorf("splitVersion(%q) = %q, %q; want %q, %q", tt.path, v, rest, tt.version, tt.rest)
		}
	}
}

func TestMatchRoute(t *testing.T) {
	s := &Server{}
	routes := s.buildRoutes()
	tests := []struct {
		method, path string
		found        bool
		params       params
	}{
		{"GET", "/containers/json", true, params{}},
		{"GET", "/containers/abc/json", true, params{"name": "abc"}},
		{"DELETE", "/containers/abc", true, params{"name": "abc"}},
		{"GET", "/images/a/b/c:1/json", true, params{"name": "a/b/c:1"}},
		{"DELETE", "/images/a/b", true, params{"name": "a/b"}},
		{"POST", "/images/a/tag", true, params{"name": "a"}},
		{"GET", "/images/json", true, params{}},
		{"GET", "/images/a//b/json", false, nil},
		{"GET", "/images//json", false, nil},
		{"GET", "/containers/abc/json/x", false, nil},
		{"PATCH", "/containers/json", false, nil},
		{"GET", "containers/json", false, nil},
		{"POST", "/exec/e1/start", true, params{"id": "e1"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			rt, p := matchRoute(routes, tt.method, tt.path)
			if (rt != nil) != tt.found {
				t.Fatalf("found %v, want %v", rt != nil, tt.found)
			}
			if tt.found && !reflect.DeepEqual(p, tt.params) {
				t.Errorf("params %v, want %v", p, tt.params)
			}
		})
	}
}

func TestCheckContainerName(t *testing.T) {
	for _, name := range []string{"ab", "/web", "a.b_c-d", "0x", "Web1"} {
		if err := checkContainerName(name); err != nil {
			t.Errorf("%q rejected: %v", name, err)
		}
	}
	for _, name := range []string{"a", "/", "-x", ".x", "_x", "a b", "a/b", "ä1", "//ab"} {
		if err := checkContainerName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    ocispec.Platform
		wantErr string
	}{
		{in: "linux", want: ocispec.Platform{OS: "linux"}},
		{in: "linux/amd64", want: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "Linux/x86_64", want: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/aarch64/v8", want: ocispec.Platform{OS: "linux", Architecture: "arm64"}},
		{in: "linux/arm/v7", want: ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "linux/armhf", want: ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "windows/amd64", wantErr: `operating system "windows" is not supported`},
		{in: "linux/amd64/v1/x", wantErr: "expected os[/arch[/variant]]"},
		{in: "linux//v7", wantErr: "expected os[/arch[/variant]]"},
		{in: "", wantErr: "expected os[/arch[/variant]]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePlatform(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestQueryValues(t *testing.T) {
	q, _ := url.ParseQuery("a=1&b=false&c=no&d=0&e=none&f=yes&g=&h=True&n=12&bad=x")
	wantBools := map[string]bool{"a": true, "b": false, "c": false, "d": false, "e": false, "f": true, "g": false, "h": true, "missing": false}
	for k, want := range wantBools {
		if got := boolValue(q, k); got != want {
			t.Errorf("boolValue(%q) = %v", k, got)
		}
	}
	if n, err := intValue(q, "n", 5); n != 12 || err != nil {
		t.Errorf("intValue(n) = %d, %v", n, err)
	}
	if n, err := intValue(q, "missing", 5); n != 5 || err != nil {
		t.Errorf("intValue(missing) = %d, %v", n, err)
	}
	if _, err := intValue(q, "bad", 5); statusFromError(err) != http.StatusBadRequest {
		t.Errorf("intValue(bad) error %v", err)
	}
	if p, err := optionalInt(q, "missing"); p != nil || err != nil {
		t.Errorf("optionalInt(missing) = %v, %v", p, err)
	}
}

func TestStatusFromError(t *testing.T) {
	if got := statusFromError(errors.Join(conflictErr{"x"}, notFoundErr{"y"})); got != http.StatusConflict {
		t.Errorf("joined errors: %d, want the first classification", got)
	}
	if got := statusFromError(errInvalidParameter(notFoundErr{"y"})); got != http.StatusBadRequest {
		t.Errorf("outer classification: %d, want 400", got)
	}
}
