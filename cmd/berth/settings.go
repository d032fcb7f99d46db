package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/settings"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

const settingsUsage = `usage: berth settings get [KEY] [--json]
       berth settings set KEY VALUE [--confirm-reset]
       berth settings validate FILE
       berth settings edit [--confirm-reset]
       berth settings share list|add PATH|remove PATH

Keys are dotted: resources.cpus, resources.memoryMiB, resources.diskGiB,
fileSharing.paths (comma-separated or a JSON array), proxies.mode (none,
system, manual), engine.<daemon.json key>, ...
A change is applied to the running VM, then saved to settings.json: the
engine's configuration by restarting only the engine, a larger disk online,
CPUs, memory, swap and shared folders by restarting the VM. A change that
fails to apply is not saved, and Berth goes on with the settings it had.
When Berth is not running, changes take effect at the next start.
`

// settingsCmd is the state one settings command works on.
type settingsCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	store          *settings.Store
}

func cmdSettings(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, settingsUsage)
		return 2
	}
	store, err := settings.NewStore()
	if err != nil {
		fmt.Fprintf(stderr, "berth settings: %v\n", err)
		return 1
	}
	c := &settingsCmd{stdin: stdin, stdout: stdout, stderr: stderr, store: store}
	sub, rest := args[0], args[1:]
	switch sub {
	case "get":
		return c.get(rest)
	case "set":
		return c.set(rest)
	case "validate":
		return c.validate(rest)
	case "edit":
		return c.edit(rest)
	case "share":
		return c.share(rest)
	}
	fmt.Fprintf(stderr, "berth settings: unknown command %q\n%s", sub, settingsUsage)
	return 2
}

// splitFlags separates the boolean flags named in known from the other
// arguments, wherever they are.
func splitFlags(args []string, known ...string) (map[string]bool, []string, error) {
	flags := map[string]bool{}
	var rest []string
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			name := strings.TrimPrefix(a, "--")
			ok := false
			for _, k := range known {
				ok = ok || k == name
			}
			if !ok {
				return nil, nil, fmt.Errorf("unknown flag %s", a)
			}
			flags[name] = true
			continue
		}
		rest = append(rest, a)
	}
	return flags, rest, nil
}

// fail prints err under the command's name, one line each, and returns 1.
func (c *settingsCmd) fail(cmd string, err error) int {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(c.stderr, "berth settings %s: %s\n", cmd, line)
	}
	return 1
}

// load reads the stored document, telling the user when the file was
// kept aside.
func (c *settingsCmd) load(cmd string) (*settings.Document, error) {
	d, bad, err := c.store.Load()
	if bad != nil {
		fmt.Fprintf(c.stderr, "berth settings %s: %v\n", cmd, bad)
	}
	return d, err
}

func (c *settingsCmd) get(args []string) int {
	flags, rest, err := splitFlags(args, "json")
	if err != nil || len(rest) > 1 {
		fmt.Fprint(c.stderr, settingsUsage)
		return 2
	}
	d, err := c.load("get")
	if err != nil {
		return c.fail("get", err)
	}
	key := ""
	if len(rest) == 1 {
		key = rest[0]
	}
	v, err := settings.Get(d, key)
	if err != nil {
		return c.fail("get", err)
	}
	return printValue(c.stdout, v, flags["json"])
}

// printValue prints v: JSON with asJSON or for an object, else a scalar
// as it is and a list one item a line.
func printValue(w io.Writer, v any, asJSON bool) int {
	switch t := v.(type) {
	case []any:
		if !asJSON {
			for _, item := range t {
				fmt.Fprintln(w, item)
			}
			return 0
		}
	case map[string]any:
	default:
		if !asJSON {
			fmt.Fprintln(w, v)
			return 0
		}
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintln(w, v)
		return 0
	}
	fmt.Fprintln(w, string(out))
	return 0
}

func (c *settingsCmd) set(args []string) int {
	flags, rest, err := splitFlags(args, "confirm-reset")
	if err != nil || len(rest) != 2 {
		fmt.Fprint(c.stderr, settingsUsage)
		return 2
	}
	d, err := c.load("set")
	if err != nil {
		return c.fail("set", err)
	}
	next, err := settings.Set(d, rest[0], rest[1])
	if err != nil {
		return c.fail("set", err)
	}
	return c.commit("set", rest[0], next, flags["confirm-reset"])
}

// share lists, adds or removes a shared folder (fileSharing.paths) with
// the settings' checks: absolute (a relative PATH is taken from the
// working folder), an existing folder, not the whole disk, not inside or
// around another shared folder.
func (c *settingsCmd) share(args []string) int {
	if len(args) == 1 && args[0] == "list" {
		d, err := c.load("share")
		if err != nil {
			return c.fail("share", err)
		}
		for _, p := range d.FileSharing.Paths {
			fmt.Fprintln(c.stdout, p)
		}
		return 0
	}
	if len(args) != 2 || (args[0] != "add" && args[0] != "remove") {
		fmt.Fprint(c.stderr, settingsUsage)
		return 2
	}
	verb := "share " + args[0]
	p, err := filepath.Abs(args[1])
	if err != nil {
		return c.fail(verb, err)
	}
	d, err := c.load(verb)
	if err != nil {
		return c.fail(verb, err)
	}
	if args[0] == "add" {
		err = settings.AddShare(d, c.store.Host, p)
	} else {
		err = settings.RemoveShare(d, c.store.Host, p)
	}
	if err != nil {
		return c.fail(verb, err)
	}
	done := "shared folder " + p
	if args[0] == "remove" {
		done = "removal of shared folder " + p
	}
	return c.commit(verb, done, d, false)
}

// commit checks next against the stored settings (a smaller disk needs
// confirmReset), applies it to the running VM when Berth runs (the engine
// restarted, the disk grown or the VM restarted, with progress), and saves
// it once applied; a change that fails to apply is not saved, and the VM
// goes on with the settings in force. what names the change for the user.
func (c *settingsCmd) commit(cmd, what string, next *settings.Document, confirmReset bool) int {
	l, err := desktop.DefaultLayout()
	if err != nil {
		return c.fail(cmd, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	began := time.Now()
	res, err := desktop.Commit(ctx, c.store, l, desktop.GeneralHost{}, next, confirmReset, func(m string) {
		fmt.Fprintf(c.stdout, "  %5.1fs  %s\n", time.Since(began).Seconds(), m)
	})
	var notSaved *desktop.NotSavedError
	if errors.As(err, &notSaved) {
		c.fail(cmd, err)
		fmt.Fprintln(c.stderr, "Nothing was saved; Berth runs with the settings it had.")
		return 1
	}
	if err != nil {
		return c.fail(cmd, resetHint(err))
	}
	for _, d := range res.Done {
		fmt.Fprintf(c.stdout, "%s\n", d)
	}
	if res.Applied {
		fmt.Fprintf(c.stdout, "%s saved and applied\n", what)
	} else {
		fmt.Fprintf(c.stdout, "%s saved; Berth is not running, so it takes effect at the next start\n", what)
	}
	return 0
}

// diskPath is the VM disk (for the backup exclusion).
func (c *settingsCmd) diskPath() string {
	l, err := desktop.DefaultLayout()
	if err != nil {
		return ""
	}
	return l.DiskPath()
}

// resetHint adds how to confirm a change that erases the VM's data.
func resetHint(err error) error {
	if errors.Is(err, settings.ErrResetRequired) {
		return fmt.Errorf("%w (run again with --confirm-reset)", err)
	}
	return err
}

func (c *settingsCmd) validate(args []string) int {
	if len(args) != 1 {
		fmt.Fprint(c.stderr, settingsUsage)
		return 2
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return c.fail("validate", err)
	}
	if err := checkDocument(data, c.store.Host); err != nil {
		return c.fail("validate", fmt.Errorf("%s:\n%w", args[0], err))
	}
	fmt.Fprintf(c.stdout, "%s: valid\n", args[0])
	return 0
}

// checkDocument parses a settings document and validates it for h.
func checkDocument(data []byte, h settings.Host) error {
	d, err := settings.Parse(data, settings.Defaults(h))
	if err != nil {
		return err
	}
	return settings.Validate(d, h)
}

func (c *settingsCmd) edit(args []string) int {
	flags, rest, err := splitFlags(args, "confirm-reset")
	if err != nil || len(rest) != 0 {
		fmt.Fprint(c.stderr, settingsUsage)
		return 2
	}
	d, err := c.load("edit")
	if err != nil {
		return c.fail("edit", err)
	}
	data, err := d.Marshal()
	if err != nil {
		return c.fail("edit", err)
	}
	dir, err := os.MkdirTemp("", "berth-settings-")
	if err != nil {
		return c.fail("edit", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, settings.FileName)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return c.fail("edit", err)
	}
	in := bufio.NewReader(c.stdin)
	for {
		if err := runEditor(file, c.stdout, c.stderr); err != nil {
			return c.fail("edit", err)
		}
		edited, err := os.ReadFile(file)
		if err != nil {
			return c.fail("edit", err)
		}
		if bytes.Equal(edited, data) {
			fmt.Fprintln(c.stdout, "no change")
			return 0
		}
		next, err := settings.Parse(edited, settings.Defaults(c.store.Host))
		if err == nil {
			err = settings.Validate(next, c.store.Host)
		}
		if err == nil {
			if old, _, lerr := c.store.Load(); lerr == nil {
				err = settings.CheckChange(old, next, flags["confirm-reset"])
			}
		}
		if err == nil {
			return c.commit("edit", "settings", next, flags["confirm-reset"])
		}
		c.fail("edit", resetHint(err))
		fmt.Fprint(c.stdout, "Nothing was saved. Edit again? [Y/n] ")
		answer, rerr := in.ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a == "n" || a == "no" || (rerr != nil && a == "") {
			fmt.Fprintln(c.stdout)
			return 1
		}
	}
}

// runEditor opens file in $VISUAL or $EDITOR (which may carry arguments,
// as "code --wait"), else vi (notepad on Windows), on this terminal.
func runEditor(file string, stdout, stderr io.Writer) error {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
		if runtime.GOOS == "windows" {
			editor = "notepad"
		}
	}
	words := strings.Fields(editor)
	cmd := exec.Command(words[0], append(words[1:], file)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("editor %s: %w", editor, err)
	}
	return nil
}

const engineUsage = `usage: berth engine config show
       berth engine config validate FILE
       berth engine config apply FILE

show prints the daemon.json document of the settings (the engine section);
validate checks a daemon.json file as the engine does; apply makes FILE the
engine section, restarts the running engine with it (only the engine, not
the VM) and saves it once the engine runs with it. A document that is not
valid, or that the engine does not start with, changes nothing.
`

func cmdEngine(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "config" {
		fmt.Fprint(stderr, engineUsage)
		return 2
	}
	switch args[1] {
	case "show":
		if len(args) != 2 {
			fmt.Fprint(stderr, engineUsage)
			return 2
		}
		store, err := settings.NewStore()
		if err != nil {
			fmt.Fprintf(stderr, "berth engine config show: %v\n", err)
			return 1
		}
		d, bad, err := store.Load()
		if bad != nil {
			fmt.Fprintf(stderr, "berth engine config show: %v\n", bad)
		}
		if err != nil {
			fmt.Fprintf(stderr, "berth engine config show: %v\n", err)
			return 1
		}
		var out bytes.Buffer
		if err := json.Indent(&out, d.Engine, "", "  "); err != nil {
			fmt.Fprintf(stderr, "berth engine config show: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, out.String())
		return 0
	case "validate":
		if len(args) != 3 {
			fmt.Fprint(stderr, engineUsage)
			return 2
		}
		data, err := os.ReadFile(args[2])
		if err != nil {
			fmt.Fprintf(stderr, "berth engine config validate: %v\n", err)
			return 1
		}
		if _, err := daemonjson.Parse(data); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(stderr, "berth engine config validate: %s: %s\n", args[2], line)
			}
			return 1
		}
		fmt.Fprintf(stdout, "%s: valid\n", args[2])
		return 0
	case "apply":
		if len(args) != 3 {
			fmt.Fprint(stderr, engineUsage)
			return 2
		}
		return engineApply(args[2], stdout, stderr)
	}
	fmt.Fprint(stderr, engineUsage)
	return 2
}

// engineApply makes the daemon.json in file the settings' engine section
// and applies it.
func engineApply(file string, stdout, stderr io.Writer) int {
	const cmd = "berth engine config apply"
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	if _, err := daemonjson.Parse(data); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: %s: %s\n", cmd, file, line)
		}
		fmt.Fprintln(stderr, "Nothing was applied.")
		return 1
	}
	store, err := settings.NewStore()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	c := &settingsCmd{stdout: stdout, stderr: stderr, store: store}
	d, err := c.load("engine config apply")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	next := d.Clone()
	next.Engine = json.RawMessage(bytes.TrimSpace(data))
	return c.commit("engine config apply", "the engine configuration from "+file, next, false)
}
