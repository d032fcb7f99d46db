package api

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets for every decoder of client input. Each checks the
// decoder's contract beyond "does not panic": errors are 400s, successes
// are well-formed.

func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{"", "{}", `{"status":{"running":true}}`, `{"label":["a=b","c"]}`, `[1]`, `{"a":{"b":false}}`, `{"a":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseFilters(raw)
		if err != nil {
			if statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		for k, vals := range got {
			for i := 1; i < len(vals); i++ {
				if vals[i-1] > vals[i] {
					t.Fatalf("values of %q not sorted: %q", k, vals)
				}
			}
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"", "0", "1700000000", "1700000000.5", "-1.000000001", "1.", ".5", "9223372036854775807.999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseTimestamp(s)
		if err != nil {
			if statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if s == "" {
			if !ts.IsZero() {
				t.Fatalf("empty string parsed to %v", ts)
			}
			return
		}
		secs, _, _ := strings.Cut(s, ".")
		if !strings.HasPrefix(s, "-") && strconv.FormatInt(ts.Unix(), 10) != strings.TrimLeft(strings.TrimPrefix(secs, "+"), "0") && ts.Unix() != 0 {
			t.Fatalf("%q parsed to %d seconds", s, ts.Unix())
		}
	})
}

// FuzzQuery drives the query decoders of the routes with arbitrary query
// strings.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"all=1&limit=3&size=true&filters=%7B%7D",
		"stdout=1&stderr=1&since=1.5&until=2&tail=10&timestamps=1",
		"since=10&until=5",
		"h=24&w=80",
		"fromSrc=-&repo=a&tag=b&changes=CMD+x&platform=linux/amd64",
		"filters=%7B%22a%22%3A%5B%22b%22%5D%7D&since=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		check := func(what string, err error) {
			if err != nil && statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("%s: error %v is not a 400", what, err)
			}
		}
		_, err = parseListOptions(q)
		check("list", err)
		lo, err := parseLogsOptions(q)
		check("logs", err)
		if err == nil && lo.Tail != "all" && strings.TrimLeft(lo.Tail, "0123456789") != "" {
			t.Fatalf("tail %q is neither all nor a count", lo.Tail)
		}
		eq, err := parseEventsQuery(q)
		check("events", err)
		if err == nil && !eq.Until.IsZero() && eq.Since.After(eq.Until) {
			t.Fatalf("since %v after until %v accepted", eq.Since, eq.Until)
		}
		_, _, err = parseSize(q)
		check("resize", err)
		_, err = importOptions(q)
		check("import", err)
		_, err = parseWaitCondition(q.Get("condition"))
		check("wait", err)
		if name := q.Get("name"); name != "" {
			check("name", checkContainerName(name))
		}
		if p := q.Get("platform"); p != "" {
			pl, err := parsePlatform(p)
			check("platform", err)
			if err == nil && pl.OS != "linux" {
				t.Fatalf("platform %q parsed to OS %q", p, pl.OS)
			}
		}
	})
}

func FuzzDecodeCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["sh"]}`,
		`{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`,
		`{"Image":"b","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}}`,
		`{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}`,
		`null`, ``, `{`, `{"Image":5}`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeCreateRequest(strings.NewReader(string(body)))
		if err != nil {
			if statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if req.Config == nil || req.HostConfig == nil {
			t.Fatal("accepted a request without Config or HostConfig")
		}
	})
}

func FuzzDecodeExecCreate(f *testing.F) {
	for _, s := range []string{`{"Cmd":["sh"],"AttachStdout":true}`, `{"Cmd":[]}`, `{"ConsoleSize":[24,80],"Cmd":["x"]}`, `{"ConsoleSize":[-1,2]}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeExecCreate(strings.NewReader(string(body)))
		if err != nil {
			if statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if len(req.Cmd) == 0 {
			t.Fatal("accepted an exec without a command")
		}
	})
}

func FuzzDecodeExecStart(f *testing.F) {
	for _, s := range []string{`{"Detach":true}`, `{"Tty":true,"ConsoleSize":[24,80]}`, ``, `null`, `{"Tty":"yes"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := decodeExecStart(strings.NewReader(string(body))); err != nil && statusFromError(err) != http.StatusBadRequest {
			t.Fatalf("error %v is not a 400", err)
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	for _, s := range []string{`{"Memory":1048576}`, `{"RestartPolicy":{"Name":"always"}}`, `{"RestartPolicy":{"Name":"never"}}`, `{"CpuShares":"x"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decodeUpdate(strings.NewReader(string(body)))
		if err != nil {
			if statusFromError(err) != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		switch u.RestartPolicy.Name {
		case "", "no", "always", "on-failure", "unless-stopped":
		default:
			t.Fatalf("accepted restart policy %q", u.RestartPolicy.Name)
		}
	})
}

func FuzzMatchRoute(f *testing.F) {
	for _, s := range []string{"/containers/json", "/images/a/b/json", "/v1.50/images/x", "//", "/images/", "/exec//start"} {
		f.Add("GET", s)
	}
	routes := (&Server{}).buildRoutes()
	f.Fuzz(func(t *testing.T, method, path string) {
		_, rest := splitVersion(path)
		rt, p := matchRoute(routes, method, rest)
		if rt == nil {
			return
		}
		if rt.method != method {
			t.Fatalf("%s %s matched a %s route", method, path, rt.method)
		}
		for k, v := range p {
			if v == "" {
				t.Fatalf("%s %s: empty parameter %q", method, path, k)
			}
		}
	})
}

func FuzzParseListenAddr(f *testing.F) {
	for _, s := range []string{"unix:///run/docker.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:0", "unix://rel", "tcp://:80", "npipe:////./pipe/x", "tcp://h:1/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		proto, address, err := parseListenAddr(addr)
		if err != nil {
			return
		}
		switch proto {
		case "unix":
			if !strings.HasPrefix(address, "/") {
				t.Fatalf("%q: relative socket path %q", addr, address)
			}
		case "tcp":
			if _, _, err := net.SplitHostPort(address); err != nil {
				t.Fatalf("%q: tcp address %q: %v", addr, address, err)
			}
		default:
			t.Fatalf("%q: protocol %q", addr, proto)
		}
	})
}

func FuzzEventsContentType(f *testing.F) {
	for _, s := range []string{"application/jsonl", "application/x-ndjson;q=0.9, application/json-seq;q=0.5", "", "*/*", ",,;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		switch ct := eventsContentType([]string{accept}); ct {
		case "application/json", "application/jsonl", "application/x-ndjson":
		default:
			t.Fatalf("Accept %q gave %q", accept, ct)
		}
	})
}
