package desktop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthdesktop/berth/app/dockercli"
	"github.com/berthdesktop/berth/settings"
)

// Files names everything Berth creates on the host, for reset, purge and
// uninstall: the home folder's layout, settings.json (which lives in the
// home folder with $BERTH_HOME, else in the OS's config folder), the
// docker context "berth", and CLI links to the berth binary.
type Files struct {
	Layout Layout
	// Settings is the settings.json file.
	Settings string
	// DockerConfig is the docker CLI's configuration folder; "" is
	// dockercli.ConfigDir.
	DockerConfig string
	// LinkDirs are the folders where a link to the berth binary may have
	// been made (berth, berth.exe); only links that resolve to Executable
	// are Berth's.
	LinkDirs   []string
	Executable string
	// Autostart is the login entry, when Berth wrote one (start at login).
	Autostart []string
	// Disk is the VM disk when the settings keep it elsewhere
	// (resources.diskPath); "" is Layout.DiskPath.
	Disk string
}

// disk is the VM disk's file.
func (f Files) disk() string {
	if f.Disk != "" {
		return f.Disk
	}
	return f.Layout.DiskPath()
}

// DefaultFiles are this user's Berth files: the layout under HomeDir,
// the settings store's file, the docker CLI's folder, and links in the
// OS's usual folders for commands.
func DefaultFiles() (Files, error) {
	l, err := DefaultLayout()
	if err != nil {
		return Files{}, err
	}
	dir, err := settings.Dir()
	if err != nil {
		return Files{}, err
	}
	f := Files{Layout: l, Settings: filepath.Join(dir, settings.FileName), LinkDirs: linkDirs(), Autostart: AutostartFiles(GeneralHost{})}
	if st, err := settings.NewStore(); err == nil {
		if d, _, err := st.Load(); err == nil {
			f.Disk = l.DiskFile(d)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		f.Executable = exe
	}
	return f, nil
}

// Item is one thing an action removes.
type Item struct {
	// Path is the file or folder; for the docker context, "docker
	// context berth".
	Path string
	// What tells the user what is lost with it.
	What string
	// Bytes is the space it takes (a sparse disk: the space in use).
	Bytes int64
	// context marks the docker context, removed through dockercli.
	context bool
}

// Plan is what one action (reset, purge, uninstall) will remove, listed
// before it is applied so the user can be told exactly what is lost.
type Plan struct {
	Action string
	Items  []Item
	// Dirs are folders removed afterwards when they are left empty.
	Dirs []string
	// dockerConfig is where the context is.
	dockerConfig string
}

// Empty reports whether there is nothing to remove.
func (p Plan) Empty() bool { return len(p.Items) == 0 }

// diskWhat is what the data disk holds.
const diskWhat = "the VM data disk: every container, image, volume and build cache"

// PurgePlan removes the VM data disk (all images, containers and
// volumes); the settings are kept.
func (f Files) PurgePlan() (Plan, error) {
	p := Plan{Action: "purge"}
	p.add(f.disk(), diskWhat)
	return p, nil
}

// ResetPlan is the factory reset: the VM data disk and the settings,
// which are the defaults again at the next start.
func (f Files) ResetPlan() (Plan, error) {
	p := Plan{Action: "reset"}
	p.add(f.disk(), diskWhat)
	p.add(f.Settings, "your settings (CPUs, memory, disk, file sharing, proxies, daemon.json); the defaults are used from now on")
	return p, nil
}

// UninstallPlan removes every file Berth created: the VM folder (data
// disk, console log, the hypervisor's files), the run folder (sockets,
// pid file), the service's log, the settings and the copies of unreadable
// settings kept aside, the docker context "berth" and links to the berth
// binary. Files Berth does not know in its folders are left, and so are
// those folders then.
func (f Files) UninstallPlan() (Plan, error) {
	p := Plan{Action: "uninstall", dockerConfig: f.DockerConfig}
	l := f.Layout
	p.add(f.disk(), diskWhat)
	p.add(l.StateDir(), "the rest of the VM's folder: console log and the hypervisor's files")
	p.add(l.RunDir(), "the docker socket, the control socket and the service's pid file")
	p.add(l.DaemonLog(), "the service's log")
	p.add(f.Settings, "your settings")
	sdir := filepath.Dir(f.Settings)
	for _, pattern := range []string{settings.FileName + ".bad-*", "." + settings.FileName + ".tmp-*"} {
		m, err := filepath.Glob(filepath.Join(sdir, pattern))
		if err != nil {
			return Plan{}, fmt.Errorf("uninstall: list %s: %w", sdir, err)
		}
		sort.Strings(m)
		for _, path := range m {
			p.add(path, "unreadable settings kept aside")
		}
	}
	if _, err := dockercli.ContextHost(f.DockerConfig); err == nil {
		where := f.DockerConfig
		if where == "" {
			where, _ = dockercli.ConfigDir()
		}
		p.Items = append(p.Items, Item{Path: "docker context " + dockercli.ContextName, context: true,
			What: "in " + where + "; the docker CLI goes back to its default context if this one is current"})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Plan{}, fmt.Errorf("uninstall: %w", err)
	}
	for _, d := range f.LinkDirs {
		for _, name := range []string{"berth", "berth.exe"} {
			path := filepath.Join(d, name)
			if isLinkTo(path, f.Executable) {
				p.add(path, "a link to the berth command")
			}
		}
	}
	for _, a := range f.Autostart {
		p.add(a, "the entry that starts Berth at login")
	}
	p.Dirs = []string{sdir, l.Home}
	return p, nil
}

// isLinkTo reports whether path is a symbolic link that resolves to exe.
func isLinkTo(path, exe string) bool {
	if exe == "" {
		return false
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	r, err := filepath.EvalSymlinks(path)
	return err == nil && r == exe
}

// add lists path when it exists.
func (p *Plan) add(path, what string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	for _, it := range p.Items {
		if it.Path == path {
			return
		}
	}
	var n int64
	if fi.IsDir() {
		// A file listed already (the disk in the VM folder) counts once.
		listed := map[string]bool{}
		for _, it := range p.Items {
			listed[it.Path] = true
		}
		filepath.WalkDir(path, func(sub string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !listed[sub] {
				if i, err := d.Info(); err == nil {
					n += diskUsage(i)
				}
			}
			return nil
		})
	} else {
		n = diskUsage(fi)
	}
	p.Items = append(p.Items, Item{Path: path, What: what, Bytes: n})
}

// Apply removes the plan's items, then the plan's folders that are left
// empty, and returns what it removed. The VM must be stopped first. It
// goes on past a failure and returns every error, each naming its path.
func (p Plan) Apply() (removed []string, err error) {
	var errs []error
	for _, it := range p.Items {
		if it.context {
			if err := dockercli.RemoveContext(p.dockerConfig); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Action, err))
				continue
			}
			removed = append(removed, it.Path)
			continue
		}
		if _, err := os.Lstat(it.Path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(it.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove %s: %w", p.Action, it.Path, err))
			continue
		}
		removed = append(removed, it.Path)
	}
	for _, d := range p.Dirs {
		// os.Remove removes a folder only when it is empty.
		if err := os.Remove(d); err == nil {
			removed = append(removed, d)
		}
	}
	return removed, errors.Join(errs...)
}

// Describe is the plan as lines for the user: each item, what is lost
// with it and its size.
func (p Plan) Describe() string {
	var b strings.Builder
	for _, it := range p.Items {
		size := ""
		if it.Bytes > 0 {
			size = " (" + humanBytes(it.Bytes) + ")"
		}
		fmt.Fprintf(&b, "  %s%s\n      %s\n", it.Path, size, it.What)
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
