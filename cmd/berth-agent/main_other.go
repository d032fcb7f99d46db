//go:build !linux

// Command berth-agent is Berth's guest agent; it runs only on Linux (inside
// the VM, or natively on a Linux host).
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "berth-agent runs only on Linux (this is %s): it is the agent inside Berth's VM\n", runtime.GOOS)
	os.Exit(1)
}
