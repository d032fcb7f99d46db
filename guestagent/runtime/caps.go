package runtime

import (
	"fmt"
	"slices"
	"strings"
)

// capNames lists the Linux capabilities by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities are the 14 capabilities Docker gives a container.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// AllCapabilities returns every capability this runtime knows.
func AllCapabilities() []string { return slices.Clone(capNames) }

// capNumber returns the number of a capability name ("CAP_CHOWN").
func capNumber(name string) (int, bool) {
	i := slices.Index(capNames, name)
	return i, i >= 0
}

// NormalizeCapability turns "net_admin", "NET_ADMIN" or "cap_net_admin"
// into "CAP_NET_ADMIN"; "all" becomes "ALL". An unknown name is an error
// naming it, in dockerd's words.
func NormalizeCapability(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return "ALL", nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if _, ok := capNumber(u); !ok {
		return "", fmt.Errorf("unknown capability: %q", c)
	}
	return u, nil
}

// TweakCapabilities applies --cap-add and --cap-drop to base as dockerd
// does: names are case-insensitive with or without "CAP_"; "ALL" in add
// gives every capability but the dropped ones, "ALL" in drop only the added
// ones; otherwise base minus drop plus add. The result is sorted by
// capability number.
func TweakCapabilities(base, add, drop []string) ([]string, error) {
	set := map[string]bool{}
	for _, c := range base {
		n, err := NormalizeCapability(c)
		if err != nil {
			return nil, err
		}
		set[n] = true
	}
	adds := map[string]bool{}
	for _, c := range add {
		n, err := NormalizeCapability(c)
		if err != nil {
			return nil, err
		}
		adds[n] = true
	}
	drops := map[string]bool{}
	for _, c := range drop {
		n, err := NormalizeCapability(c)
		if err != nil {
			return nil, err
		}
		drops[n] = true
	}
	switch {
	case adds["ALL"]:
		// Everything except what is dropped.
		set = map[string]bool{}
		for _, c := range capNames {
			set[c] = !drops[c]
		}
	case drops["ALL"]:
		// Only what is added.
		set = map[string]bool{}
		for c := range adds {
			set[c] = true
		}
	default:
		for c := range drops {
			delete(set, c)
		}
		for c := range adds {
			set[c] = true
		}
	}
	var out []string
	for _, c := range capNames {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// capMask turns capability names into a bit mask; unknown names are errors.
func capMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		i, ok := capNumber(n)
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		m |= 1 << uint(i)
	}
	return m, nil
}
