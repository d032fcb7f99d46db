package ui

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func frame(stream byte, s string) []byte {
	h := make([]byte, 8)
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestReadLogsDemultiplexes(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(1, "out one\n"))
	in.Write(frame(2, "err one\n"))
	// A rune cut between two frames comes out whole.
	euro := "€"
	in.Write(frame(1, "price "+euro[:1]))
	in.Write(frame(1, euro[1:]+"\n"))
	got := map[string]string{}
	if err := readLogs(&in, true, func(c StreamChunk) { got[c.Stream] += c.Data }); err != nil {
		t.Fatal(err)
	}
	if got["stdout"] != "out one\nprice €\n" || got["stderr"] != "err one\n" {
		t.Errorf("got %q", got)
	}
	if strings.Contains(got["stdout"], "\uFFFD") {
		t.Errorf("a cut rune was replaced: %q", got["stdout"])
	}
}

func TestReadLogsRaw(t *testing.T) {
	var out string
	if err := readLogs(strings.NewReader("tty output\r\n"), false, func(c StreamChunk) { out += c.Data }); err != nil {
		t.Fatal(err)
	}
	if out != "tty output\r\n" {
		t.Errorf("got %q", out)
	}
}

func TestReadLogsTruncatedFrame(t *testing.T) {
	b := frame(1, "hello")
	if err := readLogs(bytes.NewReader(b[:10]), true, func(StreamChunk) {}); err == nil {
		t.Error("a frame cut short was not reported")
	}
}

func TestCompleteUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{{"abc", 3}, {"a€", 4}, {"a" + "€"[:2], 1}, {"a" + "€"[:1], 1}, {"", 0}} {
		if got := completeUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("completeUTF8(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestReadLines(t *testing.T) {
	var lines []string
	readLines(strings.NewReader("{\"status\":\"a\"}\n\n{\"status\":\"b\"}"), func(c StreamChunk) { lines = append(lines, c.Data) })
	if len(lines) != 2 || lines[1] != `{"status":"b"}` {
		t.Errorf("lines = %q", lines)
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		ok           bool
	}{{"GET", "/containers/json", true}, {"PATCH", "/x", false}, {"GET", "containers", false}, {"GET", "//evil/x", false}, {"DELETE", "/volumes/v", true}} {
		if err := checkPath(tc.method, tc.path); (err == nil) != tc.ok {
			t.Errorf("checkPath(%s %s) = %v", tc.method, tc.path, err)
		}
	}
}
