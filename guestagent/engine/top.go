//go:build linux

package engine

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// procInfo is what top shows of one process, read from /proc.
type procInfo struct {
	pid, ppid     int
	uid           int
	state         string
	tty           string
	utime, stime  uint64 // clock ticks
	startTicks    uint64
	vsz, rss      uint64 // KiB
	cmdline, comm string
	threads       int
}

const clockTicks = 100 // USER_HZ on Linux

func readProc(pid int) (procInfo, error) {
	p := procInfo{pid: pid}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	s := string(stat)
	open, closeIdx := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeIdx < open {
		return p, fmt.Errorf("parse stat of %d", pid)
	}
	p.comm = s[open+1 : closeIdx]
	f := strings.Fields(s[closeIdx+1:])
	if len(f) < 22 {
		return p, fmt.Errorf("parse stat of %d: %d fields", pid, len(f))
	}
	p.state = f[0]
	p.ppid, _ = strconv.Atoi(f[1])
	ttyNr, _ := strconv.Atoi(f[4])
	p.tty = ttyName(ttyNr)
	p.utime, _ = strconv.ParseUint(f[11], 10, 64)
	p.stime, _ = strconv.ParseUint(f[12], 10, 64)
	p.threads, _ = strconv.Atoi(f[17])
	p.startTicks, _ = strconv.ParseUint(f[19], 10, 64)
	vsz, _ := strconv.ParseUint(f[20], 10, 64)
	rssPages, _ := strconv.ParseUint(f[21], 10, 64)
	p.vsz = vsz / 1024
	p.rss = rssPages * uint64(os.Getpagesize()) / 1024
	if st, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		if sys, ok := st.Sys().(*unix.Stat_t); ok {
			p.uid = int(sys.Uid)
		}
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					p.uid, _ = strconv.Atoi(fs[0])
				}
			}
		}
	}
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	if p.cmdline == "" {
		p.cmdline = "[" + p.comm + "]"
	}
	return p, nil
}

func ttyName(nr int) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major == 136:
		return "pts/" + strconv.Itoa(minor)
	case major == 4 && minor < 64:
		return "tty" + strconv.Itoa(minor)
	}
	return "?"
}

func bootTime() time.Time {
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(info.Uptime) * time.Second)
}

func userName(uid int) string {
	data, err := os.ReadFile("/etc/passwd")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) > 2 && f[2] == strconv.Itoa(uid) {
				return f[0]
			}
		}
	}
	return strconv.Itoa(uid)
}

func cpuTime(ticks uint64) string {
	secs := ticks / clockTicks
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

// topColumn is one output column of top: its title and how to fill it.
type topColumn struct {
	title string
	value func(p *procInfo, x *topContext) string
}

// topContext is what the column functions share.
type topContext struct {
	boot     time.Time
	memTotal uint64
	now      time.Time
}

func (x *topContext) start(p *procInfo) time.Time {
	return x.boot.Add(time.Duration(p.startTicks) * time.Second / clockTicks)
}

func (x *topContext) cpu(p *procInfo) float64 {
	elapsed := x.now.Sub(x.start(p)).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(p.utime+p.stime) / clockTicks / elapsed * 100
}

func (x *topContext) stime(p *procInfo) string {
	st := x.start(p)
	if x.now.Sub(st) > 24*time.Hour {
		return st.Format("Jan02")
	}
	return st.Format("15:04")
}

func elapsedString(d time.Duration) string {
	s := int64(d.Seconds())
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d", m, sec)
}

// topFields are the -o keywords top understands, with procps's titles.
var topFields = map[string]topColumn{
	"pid":     {"PID", func(p *procInfo, _ *topContext) string { return strconv.Itoa(p.pid) }},
	"ppid":    {"PPID", func(p *procInfo, _ *topContext) string { return strconv.Itoa(p.ppid) }},
	"user":    {"USER", func(p *procInfo, _ *topContext) string { return userName(p.uid) }},
	"uid":     {"UID", func(p *procInfo, _ *topContext) string { return strconv.Itoa(p.uid) }},
	"args":    {"COMMAND", func(p *procInfo, _ *topContext) string { return p.cmdline }},
	"command": {"COMMAND", func(p *procInfo, _ *topContext) string { return p.cmdline }},
	"cmd":     {"CMD", func(p *procInfo, _ *topContext) string { return p.cmdline }},
	"comm":    {"COMMAND", func(p *procInfo, _ *topContext) string { return p.comm }},
	"stat":    {"STAT", func(p *procInfo, _ *topContext) string { return p.state }},
	"tty":     {"TT", func(p *procInfo, _ *topContext) string { return p.tty }},
	"time":    {"TIME", func(p *procInfo, _ *topContext) string { return cpuTime(p.utime + p.stime) }},
	"etime":   {"ELAPSED", func(p *procInfo, x *topContext) string { return elapsedString(x.now.Sub(x.start(p))) }},
	"stime":   {"STIME", func(p *procInfo, x *topContext) string { return x.stime(p) }},
	"start":   {"STARTED", func(p *procInfo, x *topContext) string { return x.stime(p) }},
	"rss":     {"RSS", func(p *procInfo, _ *topContext) string { return strconv.FormatUint(p.rss, 10) }},
	"vsz":     {"VSZ", func(p *procInfo, _ *topContext) string { return strconv.FormatUint(p.vsz, 10) }},
	"nlwp":    {"NLWP", func(p *procInfo, _ *topContext) string { return strconv.Itoa(p.threads) }},
	"c":       {"C", func(p *procInfo, x *topContext) string { return strconv.Itoa(int(x.cpu(p))) }},
	"%cpu":    {"%CPU", func(p *procInfo, x *topContext) string { return fmt.Sprintf("%.1f", x.cpu(p)) }},
	"pcpu":    {"%CPU", func(p *procInfo, x *topContext) string { return fmt.Sprintf("%.1f", x.cpu(p)) }},
	"%mem":    {"%MEM", memColumn},
	"pmem":    {"%MEM", memColumn},
}

func memColumn(p *procInfo, x *topContext) string {
	if x.memTotal == 0 {
		return "0.0"
	}
	return fmt.Sprintf("%.1f", float64(p.rss)/float64(x.memTotal)*100)
}

// The column sets of the two classic formats.
var (
	efColumns  = []string{"uid:UID", "pid", "ppid", "c", "stime", "tty:TTY", "time", "cmd"}
	auxColumns = []string{"user", "pid", "%cpu", "%mem", "vsz", "rss", "tty:TTY", "stat", "start:START", "time", "command"}
)

// topFormat turns ps_args into columns: "" and "-ef" style give ps -ef's
// columns, BSD "aux" style gives ps aux's, and -o/o/--format LIST (comma or
// space separated keywords, each optionally KEY=TITLE) picks columns.
// Process selection flags (-e, -A, a, x, ...) are accepted and change
// nothing: top always lists the container's processes.
func topFormat(psArgs string) ([]topColumn, error) {
	fields := strings.Fields(psArgs)
	var spec []string
	bsd := false
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "-o" || f == "o" || f == "--format" || f == "-O" ||
			len(f) > 2 && f[0] == '-' && f[len(f)-1] == 'o' && strings.Trim(f[1:len(f)-1], "eAfFlLjHwyca") == "":
			if i+1 >= len(fields) {
				return nil, invalid("ps_args %q: %s needs a list of columns", psArgs, f)
			}
			i++
			spec = append(spec, strings.Split(fields[i], ",")...)
		case strings.HasPrefix(f, "--format="):
			spec = append(spec, strings.Split(strings.TrimPrefix(f, "--format="), ",")...)
		case strings.HasPrefix(f, "-o"):
			spec = append(spec, strings.Split(f[2:], ",")...)
		case strings.HasPrefix(f, "-"):
			if strings.Trim(f[1:], "eAfFlLjHwyca") != "" {
				return nil, invalid("ps_args %q: option %s is not supported", psArgs, f)
			}
		default:
			if strings.Trim(f, "auxwfeAcU") != "" {
				return nil, invalid("ps_args %q: option %s is not supported", psArgs, f)
			}
			bsd = true
		}
	}
	if len(spec) == 0 {
		spec = efColumns
		if bsd {
			spec = auxColumns
		}
	}
	var cols []topColumn
	for _, s := range spec {
		if s == "" {
			continue
		}
		key, title, custom := strings.Cut(s, "=")
		if !custom {
			key, title, custom = strings.Cut(s, ":")
		}
		c, ok := topFields[strings.ToLower(key)]
		if !ok {
			return nil, invalid("ps_args %q: unknown column %q", psArgs, key)
		}
		if custom {
			c.title = title
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return nil, invalid("ps_args %q: no columns", psArgs)
	}
	return cols, nil
}

// ContainerTop implements api.ContainerBackend.
func (e *Engine) ContainerTop(ctx context.Context, name string, psArgs string) (container.TopResponse, error) {
	var resp container.TopResponse
	cols, err := topFormat(psArgs)
	if err != nil {
		return resp, err
	}
	c, err := e.lookup(name)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	h := c.h
	restarting := c.m.State.Restarting
	c.mu.Unlock()
	if h == nil {
		return resp, conflict("container %s is not running", c.m.ID)
	}
	if restarting {
		return resp, conflict("Container %s is restarting, wait until the container is running", c.m.ID)
	}
	pids, err := h.Processes()
	if err != nil {
		return resp, fmt.Errorf("list processes of %s: %w", c.m.ID, err)
	}
	sort.Ints(pids)
	x := &topContext{boot: bootTime(), now: time.Now()}
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) == nil {
		x.memTotal = uint64(info.Totalram) * uint64(info.Unit) / 1024
	}
	for _, c := range cols {
		resp.Titles = append(resp.Titles, c.title)
	}
	resp.Processes = [][]string{}
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.value(&p, x)
		}
		resp.Processes = append(resp.Processes, row)
	}
	e.emit(c, "top", nil)
	return resp, nil
}
