package desktop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Redacted replaces every secret in a diagnostics bundle.
const Redacted = "<redacted>"

// maxLogBytes is how much of the end of each log a bundle keeps.
const maxLogBytes = 8 << 20

// Diagnostics is what a bundle holds besides the files: the versions of
// the binaries and the service's status.
type Diagnostics struct {
	// Versions are lines such as "berth v1.2 (go1.25 linux/amd64)".
	Versions []string
	Status   DaemonStatus
	// Now stamps the bundle; zero is time.Now.
	Now time.Time
}

// WriteDiagnostics writes a gzipped tar to w for a bug report: versions,
// the service's status, settings.json with its secrets redacted (proxy
// and registry credentials, auths, passwords, tokens), the service's log
// and the VM's console log (the last 8 MiB of each, with credentials in
// URLs redacted). Missing files are noted in the bundle's README.
func WriteDiagnostics(w io.Writer, f Files, d Diagnostics) error {
	now := d.Now
	if now.IsZero() {
		now = time.Now()
	}
	dir := "berth-diagnose-" + now.UTC().Format("20060102T150405Z")
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	var notes []string
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: path.Join(dir, name), Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("diagnostics %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("diagnostics %s: %w", name, err)
		}
		return nil
	}

	versions := append([]string(nil), d.Versions...)
	versions = append(versions, "host: "+runtime.GOOS+"/"+runtime.GOARCH)
	if v := d.Status.Versions; v.Agent != "" || v.Kernel != "" {
		versions = append(versions, "agent: "+v.Agent, "kernel: "+v.Kernel)
	}
	if err := put("versions.txt", []byte(strings.Join(versions, "\n")+"\n")); err != nil {
		return err
	}
	st, err := json.MarshalIndent(d.Status, "", "  ")
	if err != nil {
		return fmt.Errorf("diagnostics status: %w", err)
	}
	if err := put("status.json", append([]byte(RedactText(string(st))), '\n')); err != nil {
		return err
	}

	switch raw, err := os.ReadFile(f.Settings); {
	case errors.Is(err, fs.ErrNotExist):
		notes = append(notes, "settings.json: none ("+f.Settings+"); the defaults are in use")
	case err != nil:
		notes = append(notes, fmt.Sprintf("settings.json: %v", err))
	default:
		red, err := RedactSettings(raw)
		if err != nil {
			notes = append(notes, fmt.Sprintf("settings.json: left out, it does not parse (%v) and may hold secrets", err))
			break
		}
		if err := put("settings.json", red); err != nil {
			return err
		}
	}

	for _, lf := range []struct{ name, path string }{
		{"berth.log", f.Layout.DaemonLog()},
		{"console.log", f.Layout.ConsoleLog()},
	} {
		b, cut, err := Tail(lf.path, maxLogBytes)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", lf.name, err))
			continue
		}
		if cut {
			notes = append(notes, fmt.Sprintf("%s: the last %d bytes", lf.name, maxLogBytes))
		}
		if err := put(lf.name, []byte(RedactText(string(b)))); err != nil {
			return err
		}
	}

	readme := "Berth diagnostics, " + now.UTC().Format(time.RFC3339) + "\n\n" +
		"versions.txt  the binaries, the host, the VM's agent and kernel\n" +
		"status.json   the service's state\n" +
		"settings.json the settings, with passwords, tokens, auths and URL credentials replaced by " + Redacted + "\n" +
		"berth.log     the service's log\n" +
		"console.log   the VM's serial console\n"
	if len(notes) > 0 {
		readme += "\nNotes:\n  " + strings.Join(notes, "\n  ") + "\n"
	}
	if err := put("README.txt", []byte(readme)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("diagnostics: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("diagnostics: %w", err)
	}
	return nil
}

// Tail reads the last max bytes of a file; cut tells it was longer.
func Tail(p string, max int64) (b []byte, cut bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if fi.Size() > max {
		if _, err := f.Seek(fi.Size()-max, io.SeekStart); err != nil {
			return nil, false, err
		}
		cut = true
	}
	b, err = io.ReadAll(io.LimitReader(f, max))
	return b, cut, err
}

// secretKey tells a JSON key whose value is a secret: auths (the docker
// config's registry logins), passwords, tokens, secrets, credentials.
var secretKey = regexp.MustCompile(`(?i)auth|passw|secret|token|credential|apikey|api_key|private`)

// RedactSettings is a settings document with its secrets replaced: the
// value of every key that names one (secretKey) and the user and password
// of every URL (proxies, registry mirrors). Keys come out sorted.
func RedactSettings(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v = redactValue(v)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if secretKey.MatchString(k) {
				if s, ok := x[k].(string); ok && s == "" {
					continue
				}
				if _, ok := x[k].(bool); ok {
					continue
				}
				x[k] = Redacted
				continue
			}
			x[k] = redactValue(x[k])
		}
		return x
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
		return x
	case string:
		return RedactText(x)
	}
	return v
}

// urlCreds matches the user (and password) part of a URL.
var urlCreds = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@"']+@`)

// secretAssign matches password=..., token: ... in log lines.
var secretAssign = regexp.MustCompile(`(?i)\b(password|passwd|token|secret)(["']?\s*[=:]\s*["']?)[^\s"'&,]+`)

// RedactText replaces the credentials in URLs (http://user:pass@proxy)
// and password=/token= values in s.
func RedactText(s string) string {
	s = urlCreds.ReplaceAllString(s, "${1}"+Redacted+"@")
	return secretAssign.ReplaceAllString(s, "${1}${2}"+Redacted)
}
