package desktop

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/app/dockercli"
)

func TestApplyGeneral(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			dir := t.TempDir()
			var ran []string
			h := GeneralHost{
				GOOS: goos, Executable: "/opt/Berth App/berth", AutostartDir: filepath.Join(dir, "autostart"),
				DockerConfig: filepath.Join(dir, "docker"),
				LookPath: func(name string) (string, error) {
					if name == "docker-credential-pass" || name == "docker-credential-osxkeychain" {
						return "/usr/bin/" + name, nil
					}
					return "", errors.New("not found")
				},
				Run: func(name string, args ...string) error {
					ran = append(ran, name+" "+strings.Join(args, " "))
					return nil
				},
			}
			old := testDoc()
			next := old.Clone()
			next.General.StartAtLogin, next.General.UseKeychain, next.General.BackupVMDisk = true, true, !old.General.BackupVMDisk
			if err := ApplyGeneral(h, old, next, "/b/vm/disk.img"); err != nil {
				t.Fatal(err)
			}
			files := AutostartFiles(h)
			if len(files) != 1 {
				t.Fatalf("login entry: %q", files)
			}
			b, _ := os.ReadFile(files[0])
			if goos == "linux" && !strings.Contains(string(b), `Exec="/opt/Berth App/berth" start`) {
				t.Errorf("desktop entry:\n%s", b)
			}
			if goos == "darwin" && !strings.Contains(string(b), "<string>/opt/Berth App/berth</string><string>start</string>") {
				t.Errorf("launch agent:\n%s", b)
			}
			want := map[string]string{"linux": "pass", "darwin": "osxkeychain"}[goos]
			if cs, _ := dockercli.CredsStore(h.DockerConfig); cs != want {
				t.Errorf("credsStore %q, want %q", cs, want)
			}
			if goos == "darwin" && (len(ran) != 1 || !strings.HasPrefix(ran[0], "tmutil ") || !strings.HasSuffix(ran[0], " /b/vm/disk.img")) {
				t.Errorf("tmutil: %q", ran)
			}
			if goos == "linux" && len(ran) != 0 {
				t.Errorf("ran %q on linux", ran)
			}
			// And back: the entry goes, the credsStore Berth set goes.
			if err := ApplyGeneral(h, next, old, "/b/vm/disk.img"); err != nil {
				t.Fatal(err)
			}
			if files := AutostartFiles(h); len(files) != 0 {
				t.Errorf("login entry left: %q", files)
			}
			if cs, _ := dockercli.CredsStore(h.DockerConfig); cs != "" {
				t.Errorf("credsStore left: %q", cs)
			}
		})
	}
	// No helper installed: refused, saying what to install.
	h := GeneralHost{GOOS: "linux", DockerConfig: t.TempDir(), LookPath: func(string) (string, error) { return "", errors.New("no") }}
	next := testDoc()
	next.General.UseKeychain = true
	if err := ApplyGeneral(h, testDoc(), next, ""); err == nil || !strings.Contains(err.Error(), "general.useKeychain: no keychain credential helper is installed: install docker-credential-secretservice") {
		t.Fatalf("no helper: %v", err)
	}
	// A credsStore the user chose is left alone.
	dockercli.SetCredsStore(h.DockerConfig, "ecr-login")
	if err := ApplyGeneral(h, next, testDoc(), ""); err != nil {
		t.Fatal(err)
	}
	if cs, _ := dockercli.CredsStore(h.DockerConfig); cs != "ecr-login" {
		t.Errorf("the user's credsStore became %q", cs)
	}
}
