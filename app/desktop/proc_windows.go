package desktop

import "os"

// processAlive tells whether pid exists (FindProcess opens it on Windows).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
