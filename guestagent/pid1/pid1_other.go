//go:build !linux

package pid1

import "errors"

// Main runs PID 1, which exists only on Linux.
func Main(args []string) error {
	return errors.New("init: PID 1 runs only on Linux")
}
