package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/app/machine/qemu"
	"github.com/berthdesktop/berth/internal/version"
	"golang.org/x/term"
)

// lifecycleActions are reset, purge and uninstall: what each tells the
// user before the list of what it deletes, and after.
var lifecycleActions = map[string]struct {
	usage, intro, after string
	plan                func(desktop.Files) (desktop.Plan, error)
	restart             bool
}{
	"reset": {
		usage:   "usage: berth reset [--force]\n\nReset to factory defaults: delete the VM data disk (every container, image and volume) and the settings.\n",
		intro:   "Reset Berth to factory defaults. This deletes:",
		after:   "Berth is back to its defaults.",
		plan:    desktop.Files.ResetPlan,
		restart: true,
	},
	"purge": {
		usage:   "usage: berth purge [--force]\n\nClean / purge data: delete every container, image and volume (the VM data disk); the settings are kept.\n",
		intro:   "Purge Berth's data; the settings are kept. This deletes:",
		after:   "Berth's data is gone; the settings are kept.",
		plan:    desktop.Files.PurgePlan,
		restart: true,
	},
	"uninstall": {
		usage: "usage: berth uninstall [--force]\n\nStop the VM and remove every file Berth created: data, settings, logs, sockets, the docker context and CLI links.\n",
		intro: "Uninstall Berth: stop the VM and delete:",
		after: "Berth's files are gone. The berth program itself stays: remove it the way you installed it.",
		plan:  desktop.Files.UninstallPlan,
	},
}

// cmdLifecycle is the command for reset, purge or uninstall.
func cmdLifecycle(action string) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		f, err := desktop.DefaultFiles()
		if err != nil {
			fmt.Fprintf(stderr, "berth %s: %v\n", action, err)
			return 1
		}
		return lifecycle(action, args, f, os.Stdin, stdout, stderr)
	}
}

// lifecycle tells what action will delete, asks for confirmation unless
// --force, stops the VM, deletes, and lists what it removed. Reset and
// purge start Berth again when it was running.
func lifecycle(action string, args []string, f desktop.Files, stdin io.Reader, stdout, stderr io.Writer) int {
	a := lifecycleActions[action]
	flags, rest, err := splitFlags(args, "force", "help")
	if err != nil || len(rest) > 0 || flags["help"] {
		if err != nil {
			fmt.Fprintf(stderr, "berth %s: %v\n", action, err)
		}
		fmt.Fprint(stderr, a.usage)
		return 2
	}
	plan, err := a.plan(f)
	if err != nil {
		fmt.Fprintf(stderr, "berth %s: %v\n", action, err)
		return 1
	}
	running := vmRunning(f.Layout)
	if plan.Empty() && !running {
		fmt.Fprintf(stdout, "Nothing to delete: Berth has no files for %s to remove.\n", action)
		return 0
	}
	fmt.Fprintln(stdout, a.intro)
	fmt.Fprint(stdout, plan.Describe())
	if !flags["force"] && !confirm(stdin, stdout) {
		fmt.Fprintln(stdout, "Nothing was changed.")
		return 1
	}
	if running {
		if code := stop(f.Layout, stdout, stderr); code != 0 {
			fmt.Fprintf(stderr, "berth %s: the VM did not stop; nothing was deleted\n", action)
			return code
		}
		// Stopping removed the sockets and the pid file: list anew.
		if plan, err = a.plan(f); err != nil {
			fmt.Fprintf(stderr, "berth %s: %v\n", action, err)
			return 1
		}
	}
	removed, err := plan.Apply()
	if len(removed) > 0 {
		fmt.Fprintln(stdout, "Removed:")
		for _, r := range removed {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "berth %s: %s\n", action, line)
		}
		return 1
	}
	fmt.Fprintln(stdout, a.after)
	if running && a.restart {
		fmt.Fprintln(stdout, "Starting Berth again")
		return start(f.Layout, "", stdout, stderr)
	}
	return 0
}

// vmRunning reports whether the service process or a VM it left behind
// is running.
func vmRunning(l desktop.Layout) bool {
	if _, alive := desktop.DaemonPID(l); alive {
		return true
	}
	pid, err := qemu.RunningPID(l.StateDir())
	return err == nil && pid != 0
}

// confirm asks "Continue? [y/N]" and reads the answer from the terminal
// (stdin); only y or yes goes on.
func confirm(stdin io.Reader, stdout io.Writer) bool {
	fmt.Fprint(stdout, "Continue? [y/N] ")
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	// A terminal echoed the answer and its newline; piped input did not.
	if f, ok := stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stdout)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

const diagnoseUsage = `usage: berth diagnose [-o FILE]

Write a diagnostics bundle (tar.gz) to attach to a bug report: versions, the
service's status, the settings with secrets redacted (proxy credentials,
registry auths), the service's log and the VM's console log. Without -o it
goes to the temporary folder; its path is printed.
`

func cmdDiagnose(args []string, stdout, stderr io.Writer) int {
	f, err := desktop.DefaultFiles()
	if err != nil {
		fmt.Fprintf(stderr, "berth diagnose: %v\n", err)
		return 1
	}
	return diagnose(args, f, time.Now(), stdout, stderr)
}

func diagnose(args []string, f desktop.Files, now time.Time, stdout, stderr io.Writer) int {
	out := ""
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-o" || a == "--output") && i+1 < len(args):
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "--output="):
			out = strings.TrimPrefix(a, "--output=")
		default:
			fmt.Fprint(stderr, diagnoseUsage)
			return 2
		}
	}
	if out == "" {
		out = filepath.Join(os.TempDir(), "berth-diagnose-"+now.UTC().Format("20060102T150405Z")+".tar.gz")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := desktop.Diagnostics{Versions: []string{version.String("berth")}, Status: desktop.Inspect(ctx, f.Layout), Now: now}
	w, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "berth diagnose: %v\n", err)
		return 1
	}
	err = desktop.WriteDiagnostics(w, f, d)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", out, cerr)
	}
	if err != nil {
		os.Remove(out)
		fmt.Fprintf(stderr, "berth diagnose: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Diagnostics written to %s\n(versions, status, settings with secrets redacted, berth log, VM console log)\n", out)
	return 0
}
