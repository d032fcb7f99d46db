//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// putArchive sends a tar to PUT /containers/{id}/archive directly, for
// archives the CLI would never make.
func (e *engine) putArchive(t *testing.T, id, path string, body []byte) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", e.sock)
	}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPut, "http://engine/v1.51/containers/"+id+"/archive?path="+url.QueryEscape(path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "x"
			h.Size = 1
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCopy drives docker cp both ways, docker export and docker diff.
func TestCopy(t *testing.T) {
	e := needEngine(t)
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "tree", "sub", "script"), []byte("#!/bin/sh\necho hi\n"), 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "tree", "sub"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/script", filepath.Join(src, "tree", "link")); err != nil {
		t.Fatal(err)
	}

	for _, running := range []bool{true, false} {
		name := "stopped"
		if running {
			name = "running"
		}
		t.Run(name, func(t *testing.T) {
			var id string
			if running {
				id = e.runDetached(t, testImage, "sleep", "100000")
			} else {
				id = e.create(t, testImage, "true")
			}
			e.ok(t, "cp", filepath.Join(src, "tree"), id+":/tmp/")
			if running {
				out := e.ok(t, "exec", id, "sh", "-c", "stat -c '%a %u' /tmp/tree/sub /tmp/tree/sub/script; readlink /tmp/tree/link; /tmp/tree/link")
				if out != "710 0\n751 0\nsub/script\nhi" {
					t.Errorf("in the container: %q", out)
				}
			}
			back := t.TempDir()
			e.ok(t, "cp", id+":/tmp/tree", back)
			fi, err := os.Stat(filepath.Join(back, "tree", "sub", "script"))
			if err != nil || fi.Mode().Perm() != 0o751 {
				t.Errorf("script copied back: %v %v", fi, err)
			}
			if fi, err := os.Stat(filepath.Join(back, "tree", "sub")); err != nil || fi.Mode().Perm() != 0o710 {
				t.Errorf("dir copied back: %v %v", fi, err)
			}
			if target, err := os.Readlink(filepath.Join(back, "tree", "link")); err != nil || target != "sub/script" {
				t.Errorf("symlink copied back: %q %v", target, err)
			}
			b, _ := os.ReadFile(filepath.Join(back, "tree", "sub", "script"))
			if string(b) != "#!/bin/sh\necho hi\n" {
				t.Errorf("content %q", b)
			}
			// -L copies what a symlink points to.
			followed := filepath.Join(t.TempDir(), "followed")
			e.ok(t, "cp", "-L", id+":/tmp/tree/link", followed)
			if fi, err := os.Lstat(followed); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o751 {
				t.Errorf("cp -L of a symlink: %v %v", fi, err)
			}
			// A single file to a new name, and through stdin/stdout.
			e.ok(t, "cp", filepath.Join(src, "tree", "sub", "script"), id+":/tmp/renamed")
			out := e.ok(t, "cp", id+":/tmp/renamed", "-")
			tr := tar.NewReader(strings.NewReader(out + "\n"))
			if h, err := tr.Next(); err != nil || h.Name != "renamed" || h.Mode&0o777 != 0o751 {
				t.Errorf("cp to stdout: %+v %v", h, err)
			}
			if code, r := e.code("cp", id+":/no/such/file", back); code == 0 || !strings.Contains(r.stderr, "Could not find the file /no/such/file") {
				t.Errorf("missing source: %v", r)
			}
		})
	}

	t.Run("into a volume of a stopped container", func(t *testing.T) {
		name := uniqueName("cp-vol")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		id := e.create(t, "-v", name+":/vol-only", testImage, "cat", "/vol-only/script")
		e.ok(t, "cp", filepath.Join(src, "tree", "sub", "script"), id+":/vol-only/")
		if out := e.ok(t, "start", "-a", id); out != "#!/bin/sh\necho hi" {
			t.Errorf("file copied into the volume: %q", out)
		}
		if out := e.ok(t, "run", "--rm", "-v", name+":/v", testImage, "cat", "/v/script"); out != "#!/bin/sh\necho hi" {
			t.Errorf("volume content: %q", out)
		}
	})

	t.Run("traversal refused", func(t *testing.T) {
		id := e.create(t, testImage, "true")
		outside := filepath.Join(workDir, "cp-escape")
		os.Remove(outside)
		for _, arch := range [][]byte{
			tarOf(t, tar.Header{Name: "../../../../../../../../" + strings.TrimPrefix(outside, "/"), Typeflag: tar.TypeReg, Mode: 0o644}),
			tarOf(t, tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(outside)},
				tar.Header{Name: "evil/" + filepath.Base(outside), Typeflag: tar.TypeReg, Mode: 0o644}),
			tarOf(t, tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../../../../../../../etc/passwd"}),
		} {
			code, body := e.putArchive(t, id, "/tmp", arch)
			if code < 400 {
				t.Errorf("escaping archive accepted: %d %s", code, body)
			}
		}
		if _, err := os.Lstat(outside); err == nil {
			t.Fatalf("an archive wrote %s outside the container", outside)
		}
		// Inside the container, an absolute symlink resolves against its
		// root: cp into /tmp/abs lands in the container's /tmp.
		e.ok(t, "cp", filepath.Join(src, "tree", "sub", "script"), id+":/tmp/")
		if code, body := e.putArchive(t, id, "/tmp/script", tarOf(t, tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644})); code != 400 || !strings.Contains(body, "not a directory") {
			t.Errorf("extract onto a file: %d %s", code, body)
		}
	})

	t.Run("export and diff", func(t *testing.T) {
		id := e.create(t, testImage, "sh", "-c", "echo new > /new-file; rm /etc/group; mkdir -p /made/deep")
		e.ok(t, "start", "-a", id)
		diff := nonEmptyLines(e.ok(t, "diff", id))
		for _, want := range []string{"A /new-file", "D /etc/group", "C /etc", "A /made", "A /made/deep"} {
			if !slices.Contains(diff, want) {
				t.Errorf("docker diff misses %q: %v", want, diff)
			}
		}
		for _, l := range diff {
			if strings.HasSuffix(l, "/etc/hostname") || strings.HasSuffix(l, "/proc") || strings.HasSuffix(l, "/etc/resolv.conf") {
				t.Errorf("docker diff lists the engine's mount point %q", l)
			}
		}
		out := filepath.Join(t.TempDir(), "export.tar")
		e.ok(t, "export", "-o", out, id)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		names := map[string]*tar.Header{}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names[h.Name] = h
		}
		if h := names["new-file"]; h == nil || h.Size != 4 {
			t.Errorf("export misses new-file: %+v", h)
		}
		if names["etc/group"] != nil || names["etc/passwd"] == nil || names["bin/busybox"] == nil {
			t.Errorf("export has etc/group=%v etc/passwd=%v bin/busybox=%v", names["etc/group"] != nil, names["etc/passwd"] != nil, names["bin/busybox"] != nil)
		}
		if h := names["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink {
			t.Errorf("bin/sh in export: %+v", h)
		}
	})
}
