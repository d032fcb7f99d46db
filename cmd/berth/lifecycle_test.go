package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/app/dockercli"
)

// testFiles is a stopped Berth in a temporary $BERTH_HOME with a data
// disk, logs and settings, and its docker context in a temporary
// $DOCKER_CONFIG.
func testFiles(t *testing.T) desktop.Files {
	t.Helper()
	t.Setenv("BERTH_HOME", filepath.Join(t.TempDir(), "home"))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	f, err := desktop.DefaultFiles()
	if err != nil {
		t.Fatal(err)
	}
	f.LinkDirs = []string{t.TempDir()}
	l := f.Layout
	for _, p := range []string{l.DiskPath(), l.ConsoleLog(), l.DaemonLog(), f.Settings} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		body := "x"
		if p == f.Settings {
			body = `{"version":1,"proxies":{"mode":"manual","http":"http://me:pw@proxy:3128"}}`
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := dockercli.EnsureContext("", dockercli.HostURL(l.DockerSocket())); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLifecycleAsksFirst(t *testing.T) {
	for _, action := range []string{"reset", "purge", "uninstall"} {
		f := testFiles(t)
		var out, errb bytes.Buffer
		code := lifecycle(action, nil, f, strings.NewReader("n\n"), &out, &errb)
		if code != 1 || !strings.Contains(out.String(), "Continue? [y/N]") || !strings.Contains(out.String(), "Nothing was changed") {
			t.Errorf("%s answered no: %d\n%s%s", action, code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), f.Layout.DiskPath()) || !strings.Contains(out.String(), "image") {
			t.Errorf("%s does not say the data disk and its images go:\n%s", action, out.String())
		}
		if _, err := os.Stat(f.Layout.DiskPath()); err != nil {
			t.Errorf("%s deleted without a yes: %v", action, err)
		}
		// No answer at all (stdin closed) is a no.
		if code := lifecycle(action, nil, f, strings.NewReader(""), io.Discard, io.Discard); code != 1 {
			t.Errorf("%s with no answer: %d", action, code)
		}
	}
}

func TestPurgeAndReset(t *testing.T) {
	f := testFiles(t)
	var out bytes.Buffer
	if code := lifecycle("purge", nil, f, strings.NewReader("y\n"), &out, &out); code != 0 {
		t.Fatalf("purge: %d\n%s", code, out.String())
	}
	if _, err := os.Stat(f.Layout.DiskPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("purge kept the data disk: %v", err)
	}
	if _, err := os.Stat(f.Settings); err != nil {
		t.Errorf("purge must keep the settings: %v", err)
	}
	if !strings.Contains(out.String(), "Removed:\n  "+f.Layout.DiskPath()) {
		t.Errorf("purge output:\n%s", out.String())
	}
	out.Reset()
	if code := lifecycle("reset", []string{"--force"}, f, strings.NewReader(""), &out, &out); code != 0 {
		t.Fatalf("reset: %d\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "Continue?") {
		t.Error("--force must not ask")
	}
	if _, err := os.Stat(f.Settings); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reset kept the settings: %v", err)
	}
	out.Reset()
	if code := lifecycle("reset", []string{"--force"}, f, nil, &out, &out); code != 0 || !strings.Contains(out.String(), "Nothing to delete") {
		t.Errorf("reset with nothing left: %d\n%s", code, out.String())
	}
}

func TestUninstallLeavesNothing(t *testing.T) {
	f := testFiles(t)
	if err := dockercli.Use("", dockercli.ContextName); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := lifecycle("uninstall", []string{"--force"}, f, nil, &out, &errb); code != 0 {
		t.Fatalf("uninstall: %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Removed:", f.Layout.StateDir(), f.Settings, "docker context berth", f.Layout.Home} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("uninstall does not list %q:\n%s", want, out.String())
		}
	}
	var left []string
	filepath.WalkDir(os.Getenv("BERTH_HOME"), func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left under BERTH_HOME: %q", left)
	}
	if _, err := dockercli.ContextHost(""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("docker context left: %v", err)
	}
	if cur, err := dockercli.CurrentContext(os.Getenv("DOCKER_CONFIG")); err != nil || cur != "" {
		t.Errorf("current context %q, %v", cur, err)
	}
}

func TestDiagnose(t *testing.T) {
	f := testFiles(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	var stdout, stderr bytes.Buffer
	if code := diagnose([]string{"-o", out}, f, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("diagnose: %d %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), out) {
		t.Errorf("the bundle's path is not printed: %q", stdout.String())
	}
	r, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	names := map[string]string{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		names[filepath.Base(h.Name)] = string(b)
	}
	for _, n := range []string{"versions.txt", "settings.json", "berth.log", "console.log", "status.json"} {
		if _, ok := names[n]; !ok {
			t.Errorf("bundle has no %s", n)
		}
	}
	if strings.Contains(names["settings.json"], "me:pw") || !strings.Contains(names["settings.json"], "proxy:3128") {
		t.Errorf("settings in the bundle: %s", names["settings.json"])
	}
	if !strings.HasPrefix(names["versions.txt"], "berth ") {
		t.Errorf("versions: %q", names["versions.txt"])
	}
}
