//go:build linux

// Command berth-init is PID 1 of Berth's VM (guestagent/pid1), the initrd's
// /init. It is berth-agent's init role in a binary of its own: it carries
// only what PID 1 needs, so the boot does not pay the engine's package
// initialisation (image references, registry transports, compressors),
// which under emulation costs a large part of a second.
package main

import (
	"fmt"
	"os"

	"github.com/berthdesktop/berth/guestagent/pid1"
)

func main() {
	if err := pid1.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berth-init:", err)
		os.Exit(1)
	}
}
