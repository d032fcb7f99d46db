// Command berth is Berth's headless host CLI: start, stop and restart the
// VM, show its status and logs, open a shell in it, show and change
// settings, reset to defaults, purge data, uninstall, and write a
// diagnostics bundle. It drives the same service as the
// desktop app (app/desktop): `berth start` runs that service in a detached
// process (`berth daemon`, not listed) that owns the VM and the forwarded
// docker socket, and the other commands talk to it through its control
// socket under $BERTH_HOME/run.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berthdesktop/berth/internal/version"
)

// errNotAvailable is returned by the commands not built yet.
var errNotAvailable = errors.New("not available yet in this build")

// commands lists every subcommand with its one-line help, in usage order.
var commands = []struct {
	name string
	help string
	run  func(args []string, stdout, stderr io.Writer) int
}{
	{"start", "boot the VM and forward the docker socket", cmdStart},
	{"stop", "shut the VM down", cmdStop},
	{"restart", "stop, then start", cmdRestart},
	{"status", "show the VM's state and the engine's health (--json)", cmdStatus},
	{"logs", "show the VM's console and the service's log", cmdLogs},
	{"shell", "open a root shell inside the VM, or run a command there", func(args []string, stdout, stderr io.Writer) int { return cmdShell(args, os.Stdin, stdout, stderr) }},
	{"settings", "show or change settings (CPUs, memory, disk, shares, proxies, daemon.json)", func(args []string, stdout, stderr io.Writer) int { return cmdSettings(args, os.Stdin, stdout, stderr) }},
	{"engine", "show or check the engine's daemon.json (engine config show|validate FILE)", cmdEngine},
	{"reset", "reset to factory defaults: delete the VM disk and the settings (--force: no question)", cmdLifecycle("reset")},
	{"purge", "delete every container, image and volume; keep the settings (--force: no question)", cmdLifecycle("purge")},
	{"uninstall", "stop the VM, remove every file Berth created, its docker context and CLI links", cmdLifecycle("uninstall")},
	{"diagnose", "write a diagnostics bundle for a bug report and print its path", cmdDiagnose},
	{"version", "print the version", nil},
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
	case "daemon":
		return cmdDaemon(args[1:], stdout, stderr)
	}
	for _, c := range commands {
		if c.name == name {
			if c.run == nil {
				fmt.Fprintf(stderr, "berth %s: %v\n", name, errNotAvailable)
				return 1
			}
			return c.run(args[1:], stdout, stderr)
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
	fmt.Fprint(w, "\nEnvironment: BERTH_HOME (state folder, default ~/.berth), BERTH_VM_DIR (VM image folder)\n")
}
