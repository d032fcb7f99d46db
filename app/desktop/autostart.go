package desktop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// autostartName is the login entry's name in the user's folders.
const autostartName = "dev.berth.Berth"

// autostartPath is where the login entry of goos lives: an XDG autostart
// entry on Linux, a LaunchAgent on macOS. Windows keeps it in the
// registry (autostart_windows.go), so the path is "".
func autostartPath(h GeneralHost) (string, error) {
	dir := h.AutostartDir
	switch h.goos() {
	case "linux":
		if dir == "" {
			cfg, err := os.UserConfigDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(cfg, "autostart")
		}
		return filepath.Join(dir, "berth.desktop"), nil
	case "darwin":
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(home, "Library", "LaunchAgents")
		}
		return filepath.Join(dir, autostartName+".plist"), nil
	}
	return "", nil
}

// autostartEntry is the login entry's content for goos.
func autostartEntry(goos, exe string) string {
	if goos == "darwin" {
		return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key><string>` + autostartName + `</string>
	<key>ProgramArguments</key><array><string>` + xmlEscape(exe) + `</string><string>start</string></array>
	<key>RunAtLoad</key><true/>
</dict>
</plist>
`
	}
	return "[Desktop Entry]\nType=Application\nName=Berth\nComment=Start Berth's VM at login\nExec=" + desktopQuote(exe) + " start\nX-GNOME-Autostart-enabled=true\nNoDisplay=true\n"
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// desktopQuote quotes an Exec argument of a desktop entry.
func desktopQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\$`") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// setStartAtLogin writes or removes the login entry.
func setStartAtLogin(h GeneralHost, on bool) error {
	if h.goos() == "windows" {
		return setRunKey(h, on)
	}
	path, err := autostartPath(h)
	if err != nil {
		return err
	}
	if path == "" {
		return fmt.Errorf("start at login is not supported on %s", h.goos())
	}
	if !on {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	exe := h.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(autostartEntry(h.goos(), exe)), 0o644)
}

// AutostartFiles lists the login entry when it exists, for uninstall.
func AutostartFiles(h GeneralHost) []string {
	path, err := autostartPath(h)
	if err != nil || path == "" {
		return nil
	}
	if _, err := os.Lstat(path); err != nil {
		return nil
	}
	return []string{path}
}
