// Command berth is Berth's headless host CLI: start, stop and restart the
// VM, show its status and logs, open a shell in it, show and change
// settings, and reset, purge or uninstall. It drives the same service as the
// desktop app (app/desktop). Until the VM lands, every command except
// version says it is not available yet and exits non-zero; the engine can
// meanwhile run natively on Linux (`make run`).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berthdesktop/berth/internal/version"
)

// errNotAvailable is returned by the commands that need the VM.
var errNotAvailable = errors.New("not available yet: the Berth VM is not part of this build; on Linux, `make run` starts the engine natively")

// commands lists every subcommand with its one-line help, in usage order.
var commands = []struct {
	name string
	help string
}{
	{"start", "boot the VM and forward the docker socket"},
	{"stop", "shut the VM down"},
	{"restart", "stop, then start"},
	{"status", "show the VM's state and the engine's health"},
	{"logs", "show the VM's and the agent's logs"},
	{"shell", "open a shell inside the VM"},
	{"settings", "show or change settings (CPUs, memory, disk, shares, proxies, daemon.json)"},
	{"reset", "delete every container, image and volume; keep settings"},
	{"purge", "delete all of Berth's data and settings"},
	{"uninstall", "purge, then remove the docker context and socket links"},
	{"version", "print the version"},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit status:
// 0 on success, 1 when the command failed, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, version.String("berth"))
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			fmt.Fprintf(stderr, "berth %s: %v\n", name, errNotAvailable)
			return 1
		}
	}
	fmt.Fprintf(stderr, "berth: unknown command %q\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: berth COMMAND\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.help)
	}
}
