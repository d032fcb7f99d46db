package desktop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/dockercli"
	"github.com/berthdesktop/berth/settings"
)

// berthFiles lays out a home folder as a run of Berth leaves it, a docker
// configuration with the context "berth" current, and a link to the berth
// binary; it returns the Files naming them.
func berthFiles(t *testing.T) Files {
	t.Helper()
	home := filepath.Join(t.TempDir(), "berth-home")
	l := Layout{Home: home}
	f := Files{Layout: l, Settings: filepath.Join(home, settings.FileName), DockerConfig: t.TempDir(), LinkDirs: []string{t.TempDir()}}
	for path, body := range map[string]string{
		l.DiskPath():                            "disk",
		l.ConsoleLog():                          "console",
		filepath.Join(l.StateDir(), "qemu.pid"): "1",
		l.PIDFile():                             "1",
		l.LastError():                           "{}",
		l.DaemonLog():                           "log",
		f.Settings:                              `{"version":1}`,
		f.Settings + ".bad-20260101T000000Z":    "{",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := dockercli.EnsureContext(f.DockerConfig, dockercli.HostURL(l.DockerSocket())); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.DockerConfig, "config.json"), []byte(`{"auths":{"r.example":{}},"currentContext":"berth"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "berth")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	f.Executable = exe
	if err := os.Symlink(exe, filepath.Join(f.LinkDirs[0], "berth")); err != nil {
		t.Fatal(err)
	}
	return f
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestUninstallRemovesEveryFile(t *testing.T) {
	f := berthFiles(t)
	// A link named berth to something else is not Berth's.
	other := t.TempDir()
	if err := os.Symlink("/bin/true", filepath.Join(other, "berth")); err != nil {
		t.Fatal(err)
	}
	f.LinkDirs = append(f.LinkDirs, other)
	p, err := f.UninstallPlan()
	if err != nil {
		t.Fatal(err)
	}
	desc := p.Describe()
	for _, want := range []string{f.Layout.StateDir(), f.Layout.RunDir(), f.Layout.DaemonLog(), f.Settings, f.Settings + ".bad-", "docker context berth", filepath.Join(f.LinkDirs[0], "berth")} {
		if !strings.Contains(desc, want) {
			t.Errorf("the plan does not tell %q:\n%s", want, desc)
		}
	}
	removed, err := p.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, "docker context berth") || !slices.Contains(removed, f.Layout.Home) {
		t.Errorf("removed %q", removed)
	}
	if exists(f.Layout.Home) {
		var left []string
		filepath.WalkDir(f.Layout.Home, func(p string, _ fs.DirEntry, _ error) error { left = append(left, p); return nil })
		t.Errorf("left under BERTH_HOME: %q", left)
	}
	if _, err := dockercli.ContextHost(f.DockerConfig); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the docker context is still there: %v", err)
	}
	if cur, _ := dockercli.CurrentContext(f.DockerConfig); cur != "" {
		t.Errorf("current context %q", cur)
	}
	if b, _ := os.ReadFile(filepath.Join(f.DockerConfig, "config.json")); !strings.Contains(string(b), "r.example") {
		t.Errorf("the rest of config.json was not kept: %s", b)
	}
	if exists(filepath.Join(f.LinkDirs[0], "berth")) || !exists(filepath.Join(other, "berth")) || !exists(f.Executable) {
		t.Error("only the link to the berth binary goes, and the binary stays")
	}
	// Once more: nothing is left to do.
	if p, err := f.UninstallPlan(); err != nil || !p.Empty() {
		t.Errorf("second plan %+v, %v", p, err)
	}
}

func TestUninstallLeavesOtherFiles(t *testing.T) {
	f := berthFiles(t)
	mine := filepath.Join(f.Layout.Home, "my-notes.txt")
	if err := os.WriteFile(mine, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	// settings.json in a folder of its own (no $BERTH_HOME).
	cfgDir := filepath.Join(t.TempDir(), "config", "berth")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.Settings = filepath.Join(cfgDir, settings.FileName)
	if err := os.WriteFile(f.Settings, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := f.UninstallPlan()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "keep" {
		t.Errorf("a file Berth did not make was touched: %v", err)
	}
	if exists(cfgDir) || exists(f.Layout.StateDir()) {
		t.Error("the settings folder and the VM folder must go")
	}
}

func TestPurgeKeepsSettings(t *testing.T) {
	f := berthFiles(t)
	p, err := f.PurgePlan()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].Path != f.Layout.DiskPath() || !strings.Contains(p.Items[0].What, "image") {
		t.Fatalf("purge plan %+v", p.Items)
	}
	if _, err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	if exists(f.Layout.DiskPath()) || !exists(f.Settings) || !exists(f.Layout.ConsoleLog()) {
		t.Error("purge removes the data disk only")
	}
	if _, err := dockercli.ContextHost(f.DockerConfig); err != nil {
		t.Errorf("purge keeps the docker context: %v", err)
	}
}

func TestResetRemovesDiskAndSettings(t *testing.T) {
	f := berthFiles(t)
	p, err := f.ResetPlan()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 {
		t.Fatalf("reset plan %+v", p.Items)
	}
	removed, err := p.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{f.Layout.DiskPath(), f.Settings}) {
		t.Errorf("removed %q", removed)
	}
	if exists(f.Layout.DiskPath()) || exists(f.Settings) || !exists(f.Layout.DaemonLog()) || !exists(f.Layout.Home) {
		t.Error("reset removes the disk and the settings only")
	}
	st := &settings.Store{Path: f.Settings, Host: settings.Host{OS: "linux", Home: "/home/u"}}
	if d, _, err := st.Load(); err != nil || d.Resources.CPUs != settings.DefaultCPUs {
		t.Errorf("after reset the defaults are in use: %+v, %v", d, err)
	}
}

func TestWriteDiagnostics(t *testing.T) {
	f := berthFiles(t)
	doc := `{"version":1,"proxies":{"mode":"manual","http":"http://alice:s3cret@proxy:3128","https":"https://bob@proxy:3129","noProxy":"localhost"},
"engine":{"registry-mirrors":["https://mirroruser:mirrorpass@mirror.example"],"debug":true},
"auths":{"registry.example":{"auth":"YWxpY2U6czNjcmV0"}},"general":{"useKeychain":true}}`
	if err := os.WriteFile(f.Settings, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Layout.DaemonLog(), []byte("level=INFO msg=pull proxy=http://alice:s3cret@proxy:3128 password=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteDiagnostics(&buf, f, Diagnostics{Versions: []string{"berth v9"}, Status: DaemonStatus{}, Now: now}); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[strings.TrimPrefix(h.Name, "berth-diagnose-20260102T030405Z/")] = string(b)
	}
	for _, name := range []string{"versions.txt", "status.json", "settings.json", "berth.log", "console.log", "README.txt"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the bundle has no %s (has %v)", name, files)
		}
	}
	all := strings.Join([]string{files["settings.json"], files["berth.log"], files["status.json"]}, "\n")
	for _, secret := range []string{"s3cret", "alice", "bob@", "mirrorpass", "mirroruser", "YWxpY2U6czNjcmV0", "hunter2"} {
		if strings.Contains(all, secret) {
			t.Errorf("the bundle still has %q:\n%s", secret, all)
		}
	}
	for _, kept := range []string{"proxy:3128", "mirror.example", "localhost", `"debug": true`, `"useKeychain": true`, "msg=pull"} {
		if !strings.Contains(all, kept) {
			t.Errorf("the bundle lost %q:\n%s", kept, all)
		}
	}
	if !strings.Contains(files["versions.txt"], "berth v9") || files["console.log"] != "console" {
		t.Errorf("versions %q console %q", files["versions.txt"], files["console.log"])
	}

	// A settings file that does not parse is left out, and told.
	if err := os.WriteFile(f.Settings, []byte(`{"proxies":{"http":"http://a:b@p"`), 0o600); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := WriteDiagnostics(&buf, f, Diagnostics{}); err != nil {
		t.Fatal(err)
	}
	gz, _ = gzip.NewReader(&buf)
	raw, _ := io.ReadAll(gz)
	if bytes.Contains(raw, []byte("http://a:b@p")) || !bytes.Contains(raw, []byte("left out")) {
		t.Error("an unreadable settings file must be left out of the bundle and noted")
	}
}
