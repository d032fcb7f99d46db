package desktop

import (
	"errors"
	"os"

	"golang.org/x/sys/windows/registry"
)

// runKey is where Windows keeps the user's programs started at login.
const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// setRunKey adds or removes Berth's value under the Run key.
func setRunKey(h GeneralHost, on bool) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if !on {
		if err := k.DeleteValue("Berth"); err != nil && !errors.Is(err, registry.ErrNotExist) {
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
	return k.SetStringValue("Berth", `"`+exe+`" start`)
}
