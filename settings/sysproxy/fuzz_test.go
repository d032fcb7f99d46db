package sysproxy

import (
	"strings"
	"testing"
)

func FuzzParseScutil(f *testing.F) {
	f.Add([]byte(scutilFull))
	f.Add([]byte("<dictionary> { HTTPEnable : 1 HTTPProxy : h HTTPPort : 8080 ExceptionsList : <array> { 0 : *.local } }"))
	f.Add([]byte("<dictionary> { }"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseScutil(in)
		if err != nil {
			if !p.IsZero() {
				t.Fatalf("an error (%v) with a result %+v", err, p)
			}
			return
		}
		checkWellFormed(t, p)
	})
}

func FuzzParseWinINet(f *testing.F) {
	f.Add(uint32(1), "proxy:3128", "<local>;*.corp")
	f.Add(uint32(1), "http=h:1;https=https://s:2;ftp=f:3", "10.*;169.254/16")
	f.Add(uint32(0), "p", "")
	f.Add(uint32(1), "[fd00::1]:3128", "")
	f.Fuzz(func(t *testing.T, enable uint32, server, override string) {
		p := ParseWinINet(enable, server, override)
		if enable == 0 && !p.IsZero() {
			t.Fatalf("disabled, yet %+v", p)
		}
		if p.HTTP == "" && p.HTTPS == "" && p.NoProxy != "" {
			t.Fatalf("NoProxy without a proxy: %+v", p)
		}
		checkWellFormed(t, p)
	})
}

func FuzzParseGVariantStrings(f *testing.F) {
	f.Add("['localhost', '127.0.0.0/8', '::1']")
	f.Add(`@as ["a", 'b\'c', '\u00e9']`)
	f.Add("[]")
	f.Fuzz(func(t *testing.T, in string) {
		list, err := parseGVariantStrings(in)
		if err != nil {
			if list != nil {
				t.Fatalf("an error (%v) with a list %q", err, list)
			}
			return
		}
		// Printing the list back and parsing it again gives the same list.
		quoted := make([]string, len(list))
		for i, s := range list {
			quoted[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
		}
		again, err := parseGVariantStrings("[" + strings.Join(quoted, ", ") + "]")
		if err != nil || strings.Join(again, "\x00") != strings.Join(list, "\x00") || len(again) != len(list) {
			t.Fatalf("%q: reparsed %q as %q (%v)", in, list, again, err)
		}
		p := ParseGSettings("'manual'", "'h'", 1, "", 0, in)
		checkWellFormed(t, p)
	})
}
