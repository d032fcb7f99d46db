//go:build !windows

package desktop

import "errors"

// setRunKey is Windows's; elsewhere the login entry is a file.
func setRunKey(GeneralHost, bool) error {
	return errors.New("the Run key exists only on Windows")
}
