package link

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

func TestStatusMemory(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(mi, []byte("MemTotal:        2000 kB\nMemFree:  10 kB\nMemAvailable:     500 kB\n"), 0o644)
	c := &Control{Sys: &fakeSystem{}, Meminfo: mi}
	client := controlClient(t, c)
	resp, err := client.Get("http://guest/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.MemTotalBytes != 2000*1024 || s.MemAvailableBytes != 500*1024 {
		t.Errorf("memory = %d / %d", s.MemTotalBytes, s.MemAvailableBytes)
	}
}

func TestVolumeFiles(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "web", "_data")
	os.MkdirAll(filepath.Join(data, "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(data, "index.html"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(data, "sub", "a.txt"), []byte("abc"), 0o644)
	secret := t.TempDir()
	os.WriteFile(filepath.Join(secret, "outside.txt"), []byte("no"), 0o644)
	os.Symlink(secret, filepath.Join(data, "escape"))

	c := &Control{Sys: &fakeSystem{}, VolumesRoot: root}
	client := controlClient(t, c)
	list := func(name, path string) (int, []VolumeEntry, string) {
		resp, err := client.Get("http://guest/volumes/" + url.PathEscape(name) + "/files?path=" + url.QueryEscape(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out []VolumeEntry
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return resp.StatusCode, out, string(b)
	}

	code, got, body := list("web", "")
	if code != 200 || len(got) != 3 || got[0].Name != "sub" || !got[0].Dir || got[1].Name != "escape" || got[2].Name != "index.html" {
		t.Fatalf("root listing: %d %s", code, body)
	}
	for _, e := range got {
		if e.Name == "index.html" && (e.Size != 5 || e.Dir) {
			t.Errorf("index.html = %+v", e)
		}
	}
	if code, got, body := list("web", "sub"); code != 200 || len(got) != 2 || got[0].Name != "deeper" || got[1].Name != "a.txt" {
		t.Errorf("sub listing: %d %s", code, body)
	}
	// ".." is cleaned against the volume's root; a link out of the
	// volume is not followed.
	if code, got, body := list("web", "../../"); code != 200 || len(got) != 3 {
		t.Errorf("../../ listing: %d %s", code, body)
	}
	if code, _, body := list("web", "escape"); code == 200 {
		t.Errorf("symlink out of the volume followed: %s", body)
	}
	if code, _, _ := list("web", "index.html"); code != http.StatusBadRequest {
		t.Errorf("listing a file: status %d, want 400", code)
	}
	for _, name := range []string{"nosuch", "..", ".hidden"} {
		if code, _, _ := list(name, ""); code != http.StatusNotFound {
			t.Errorf("volume %q: status %d, want 404", name, code)
		}
	}
	c2 := &Control{Sys: &fakeSystem{}}
	if resp, err := controlClient(t, c2).Get("http://guest/volumes/web/files"); err != nil || resp.StatusCode != 404 {
		t.Errorf("no volumes root: %v %v", resp, err)
	}
}
