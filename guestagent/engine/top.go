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

// topFormat is the column set a ps_args asks for: "-ef" style (the
// default) or BSD "aux" style.
func topFormat(psArgs string) (bsd bool, err error) {
	a := strings.TrimSpace(psArgs)
	switch {
	case a == "":
		return false, nil
	case strings.HasPrefix(a, "-"):
		for _, f := range strings.Fields(a) {
			if !strings.HasPrefix(f, "-") || strings.Trim(f[1:], "efAlFjHwyc") != "" {
				return false, invalid("ps_args %q is not supported: use -ef or aux", psArgs)
			}
		}
		return false, nil
	default:
		if strings.Trim(a, "auxwfe ") != "" {
			return false, invalid("ps_args %q is not supported: use -ef or aux", psArgs)
		}
		return true, nil
	}
}

// ContainerTop implements api.ContainerBackend.
func (e *Engine) ContainerTop(ctx context.Context, name string, psArgs string) (container.TopResponse, error) {
	var resp container.TopResponse
	bsd, err := topFormat(psArgs)
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
	boot := bootTime()
	var memTotal uint64
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) == nil {
		memTotal = uint64(info.Totalram) * uint64(info.Unit) / 1024
	}
	if bsd {
		resp.Titles = []string{"USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND"}
	} else {
		resp.Titles = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}
	}
	resp.Processes = [][]string{}
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		start := boot.Add(time.Duration(p.startTicks) * time.Second / clockTicks)
		elapsed := time.Since(start).Seconds()
		cpu := 0.0
		if elapsed > 0 {
			cpu = float64(p.utime+p.stime) / clockTicks / elapsed * 100
		}
		stime := start.Format("15:04")
		if time.Since(start) > 24*time.Hour {
			stime = start.Format("Jan02")
		}
		if bsd {
			mem := 0.0
			if memTotal > 0 {
				mem = float64(p.rss) / float64(memTotal) * 100
			}
			resp.Processes = append(resp.Processes, []string{
				userName(p.uid), strconv.Itoa(p.pid), fmt.Sprintf("%.1f", cpu), fmt.Sprintf("%.1f", mem),
				strconv.FormatUint(p.vsz, 10), strconv.FormatUint(p.rss, 10), p.tty, p.state, stime,
				cpuTime(p.utime + p.stime), p.cmdline,
			})
			continue
		}
		resp.Processes = append(resp.Processes, []string{
			userName(p.uid), strconv.Itoa(p.pid), strconv.Itoa(p.ppid), strconv.Itoa(int(cpu)), stime,
			p.tty, cpuTime(p.utime + p.stime), p.cmdline,
		})
	}
	e.emit(c, "top", nil)
	return resp, nil
}
