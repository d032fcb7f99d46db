package desktop

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/berthdesktop/berth/app/dockercli"
	"github.com/berthdesktop/berth/settings"
)

// GeneralHost is where the General settings act on the user's machine;
// its zero value is the real one (the user's folders, the OS's tools).
type GeneralHost struct {
	// GOOS is the OS whose conventions apply ("" is runtime.GOOS).
	GOOS string
	// Executable is the berth command started at login.
	Executable string
	// AutostartDir overrides where the login entry goes (tests).
	AutostartDir string
	// DockerConfig is the docker CLI's folder ("" is its default).
	DockerConfig string
	// LookPath finds a credential helper ("" is exec.LookPath).
	LookPath func(string) (string, error)
	// Run runs an OS tool (macOS tmutil); nil runs it.
	Run func(name string, args ...string) error
}

func (h GeneralHost) goos() string {
	if h.GOOS == "" {
		return runtime.GOOS
	}
	return h.GOOS
}

func (h GeneralHost) lookPath(name string) (string, error) {
	if h.LookPath != nil {
		return h.LookPath(name)
	}
	return exec.LookPath(name)
}

func (h GeneralHost) run(name string, args ...string) error {
	if h.Run != nil {
		return h.Run(name, args...)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return nil
}

// ApplyGeneral makes the machine follow the General settings that changed
// from old (nil: apply them all): start at login (a login entry running
// `berth start`), the OS keychain for registry credentials (the docker
// CLI's credsStore), and the VM disk in backups (macOS: Time Machine's
// exclusion of diskPath). Check for updates needs nothing: Berth fetches
// nothing while it is off, and has no update service to ask yet. Each
// failure names the setting.
func ApplyGeneral(h GeneralHost, old, next *settings.Document, diskPath string) error {
	var errs []error
	changed := func(a, b bool) bool { return old == nil || a != b }
	var o settings.General
	if old != nil {
		o = old.General
	}
	n := next.General
	if changed(o.StartAtLogin, n.StartAtLogin) {
		if err := setStartAtLogin(h, n.StartAtLogin); err != nil {
			errs = append(errs, fmt.Errorf("general.startAtLogin: %w", err))
		}
	}
	if changed(o.UseKeychain, n.UseKeychain) {
		if err := setKeychain(h, n.UseKeychain); err != nil {
			errs = append(errs, fmt.Errorf("general.useKeychain: %w", err))
		}
	}
	if changed(o.BackupVMDisk, n.BackupVMDisk) && h.goos() == "darwin" {
		verb := "addexclusion"
		if n.BackupVMDisk {
			verb = "removeexclusion"
		}
		if err := h.run("tmutil", verb, diskPath); err != nil {
			errs = append(errs, fmt.Errorf("general.backupVMDisk: %w", err))
		}
	}
	return errors.Join(errs...)
}

// keychainHelpers are the docker credential helpers of each OS's keychain,
// in order of preference.
var keychainHelpers = map[string][]string{
	"darwin":  {"osxkeychain"},
	"windows": {"wincred"},
	"linux":   {"secretservice", "pass"},
}

// setKeychain points the docker CLI at the OS keychain's credential
// helper, or takes that away again (a credsStore Berth did not set is
// left as it is).
func setKeychain(h GeneralHost, on bool) error {
	helpers := keychainHelpers[h.goos()]
	cur, err := dockercli.CredsStore(h.DockerConfig)
	if err != nil {
		return err
	}
	if !on {
		for _, name := range helpers {
			if cur == name {
				return dockercli.SetCredsStore(h.DockerConfig, "")
			}
		}
		return nil
	}
	for _, name := range helpers {
		if _, err := h.lookPath("docker-credential-" + name); err == nil {
			return dockercli.SetCredsStore(h.DockerConfig, name)
		}
	}
	if len(helpers) == 0 {
		return fmt.Errorf("no keychain credential helper is known on %s", h.goos())
	}
	return fmt.Errorf("no keychain credential helper is installed: install docker-credential-%s (Debian: golang-docker-credential-helpers)", helpers[0])
}
