package pid1

import (
	"strings"
	"testing"
)

func TestBinfmtRegistration(t *testing.T) {
	rosetta := `:rosetta:M:0:\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00:` +
		`\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/run/rosetta/rosetta:CF`
	tests := []struct {
		name    string
		e       binfmtEntry
		want    string
		wantErr string
	}{
		{"rosetta", rosettaEntry("/run/rosetta/rosetta"), rosetta, ""},
		{"colon in magic escaped", binfmtEntry{Name: "t", Offset: 4, Magic: []byte(":a"), Interpreter: "/bin/true"}, `:t:M:4:\x3a\x61::/bin/true:`, ""},
		{"no name", binfmtEntry{Magic: []byte("a"), Interpreter: "/i"}, "", "name"},
		{"register", binfmtEntry{Name: "register", Magic: []byte("a"), Interpreter: "/i"}, "", "name"},
		{"slash in name", binfmtEntry{Name: "a/b", Magic: []byte("a"), Interpreter: "/i"}, "", "name"},
		{"no magic", binfmtEntry{Name: "a", Interpreter: "/i"}, "", "magic"},
		{"short mask", binfmtEntry{Name: "a", Magic: []byte("ab"), Mask: []byte{0xff}, Interpreter: "/i"}, "", "mask"},
		{"past 128 bytes", binfmtEntry{Name: "a", Offset: 127, Magic: []byte("ab"), Interpreter: "/i"}, "", "offset"},
		{"relative interpreter", binfmtEntry{Name: "a", Magic: []byte("a"), Interpreter: "rosetta"}, "", "interpreter"},
		{"colon in interpreter", binfmtEntry{Name: "a", Magic: []byte("a"), Interpreter: "/a:b"}, "", "interpreter"},
		{"unknown flag", binfmtEntry{Name: "a", Magic: []byte("a"), Interpreter: "/i", Flags: "CX"}, "", "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.registration()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error about %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}
