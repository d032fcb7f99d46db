package pid1

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Share is one virtiofs share: the tag its device carries and the guest path
// it is mounted at (the same path it has on the host).
type Share struct {
	Tag  string
	Path string
}

// FUSEShare is one folder the host serves over FUSE on the channel's file
// share port (guestagent/fuseshare): the tag the host's stream names it by,
// the guest path it is mounted at, and whether it is mounted read-only.
type FUSEShare struct {
	Tag      string
	Path     string
	ReadOnly bool
}

// Params are the kernel command line parameters pid1 reads.
type Params struct {
	// Shares are berth.shares=<tag>=<path>[,...]. Without ShareDev each
	// tag is a virtiofs device of its own (QEMU); with it, each tag is a
	// directory at the root of that one device (vz's multiple-directory
	// share).
	Shares []Share
	// ShareDev is berth.sharedev=<virtiofs tag>: the one device holding
	// every share's directory; "" when each share is its own device.
	ShareDev string
	// Rosetta is berth.rosetta=<virtiofs tag>: the device sharing Apple's
	// Rosetta runtime, registered with binfmt_misc for x86-64 binaries.
	Rosetta string
	// FUSE are berth.fuse=<tag>=<path>[,...], with berth.fusero=<tag>[,...]
	// marking the read-only ones: folders the host serves over FUSE
	// (Hyper-V, which has no virtiofs).
	FUSE    []FUSEShare
	Time    time.Time // berth.time=<unix seconds>; zero when absent
	Disk    string    // berth.disk=<device>; DefaultDisk when absent
	Link    string    // berth.link=vsock|serial; "" serves every transport present
	Engine  string    // berth.engine=<path>: another engine binary (diagnostics, tests)
	Debug   bool      // berth.debug: log each boot step with its time since kernel start
	HostOS  string    // berth.hostos: the host's OS, for the engine's reading of bind sources
	SwapMiB int       // berth.swap: the size of the VM's swap file on the data disk (0: none)
	Net     string    // berth.net=dhcp|static|auto; NetDHCP when absent
}

// The ways pid1 configures eth0 (berth.net; see the package doc).
const (
	NetDHCP   = "dhcp"   // a DHCPv4 lease, kept for the life of the VM
	NetStatic = "static" // QEMU user network's static addresses, no DHCP
	NetAuto   = "auto"   // DHCP; the static addresses when no lease comes in time
)

// DefaultDisk is the data disk when berth.disk is absent.
const DefaultDisk = "/dev/vda"

// ErrBadParam is returned for a berth.* parameter that does not parse.
var ErrBadParam = errors.New("bad kernel parameter")

// ParseCmdline parses the contents of /proc/cmdline. Parameters other than
// berth.* are ignored; a berth.* parameter that does not parse is an error.
func ParseCmdline(cmdline string) (Params, error) {
	p := Params{Disk: DefaultDisk, Net: NetDHCP}
	var fuseRO []string
	for _, field := range strings.Fields(cmdline) {
		key, val, _ := strings.Cut(field, "=")
		switch key {
		case "berth.shares":
			shares, err := parseShares(val)
			if err != nil {
				return Params{}, err
			}
			p.Shares = shares
		case "berth.sharedev":
			if !validTag(val) {
				return Params{}, fmt.Errorf("%w: berth.sharedev=%q", ErrBadParam, val)
			}
			p.ShareDev = val
		case "berth.rosetta":
			if !validTag(val) {
				return Params{}, fmt.Errorf("%w: berth.rosetta=%q", ErrBadParam, val)
			}
			p.Rosetta = val
		case "berth.fuse":
			shares, err := parseShares(val)
			if err != nil {
				return Params{}, fmt.Errorf("berth.fuse: %w", err)
			}
			p.FUSE = nil
			for _, s := range shares {
				if !validTag(s.Tag) {
					return Params{}, fmt.Errorf("%w: berth.fuse tag %q", ErrBadParam, s.Tag)
				}
				p.FUSE = append(p.FUSE, FUSEShare{Tag: s.Tag, Path: s.Path})
			}
		case "berth.fusero":
			fuseRO = nil
			if val != "" {
				fuseRO = strings.Split(val, ",")
			}
		case "berth.time":
			secs, err := strconv.ParseInt(val, 10, 64)
			if err != nil || secs <= 0 || secs > 1<<40 {
				return Params{}, fmt.Errorf("%w: berth.time=%q", ErrBadParam, val)
			}
			p.Time = time.Unix(secs, 0)
		case "berth.disk":
			if !strings.HasPrefix(val, "/dev/") || path.Clean(val) != val {
				return Params{}, fmt.Errorf("%w: berth.disk=%q", ErrBadParam, val)
			}
			p.Disk = val
		case "berth.link":
			if val != "vsock" && val != "serial" {
				return Params{}, fmt.Errorf("%w: berth.link=%q", ErrBadParam, val)
			}
			p.Link = val
		case "berth.net":
			if val != NetDHCP && val != NetStatic && val != NetAuto {
				return Params{}, fmt.Errorf("%w: berth.net=%q", ErrBadParam, val)
			}
			p.Net = val
		case "berth.debug":
			p.Debug = true
		case "berth.swap":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 1<<20 {
				return Params{}, fmt.Errorf("%w: berth.swap=%q", ErrBadParam, val)
			}
			p.SwapMiB = n
		case "berth.hostos":
			if val != "linux" && val != "darwin" && val != "windows" {
				return Params{}, fmt.Errorf("%w: berth.hostos=%q", ErrBadParam, val)
			}
			p.HostOS = val
		case "berth.engine":
			if !path.IsAbs(val) || path.Clean(val) != val {
				return Params{}, fmt.Errorf("%w: berth.engine=%q", ErrBadParam, val)
			}
			p.Engine = val
		}
	}
	if p.ShareDev != "" {
		// Each share names a directory at the root of the one device.
		for _, s := range p.Shares {
			if !validTag(s.Tag) {
				return Params{}, fmt.Errorf("%w: berth.shares directory %q of berth.sharedev=%s", ErrBadParam, s.Tag, p.ShareDev)
			}
		}
	}
	for _, tag := range fuseRO {
		i := slices.IndexFunc(p.FUSE, func(s FUSEShare) bool { return s.Tag == tag })
		if i < 0 {
			return Params{}, fmt.Errorf("%w: berth.fusero names %q, which berth.fuse does not", ErrBadParam, tag)
		}
		p.FUSE[i].ReadOnly = true
	}
	seen := map[string]bool{}
	for _, s := range p.FUSE {
		if seen[s.Tag] {
			return Params{}, fmt.Errorf("%w: berth.fuse names %q twice", ErrBadParam, s.Tag)
		}
		seen[s.Tag] = true
	}
	return p, nil
}

// validTag tells whether t can be a virtiofs tag, a directory of a
// multiple-directory share, or a FUSE share's tag: 1 to 36 letters,
// digits, '.', '_' or '-', not starting with '.' (so never "." or "..").
func validTag(t string) bool {
	if t == "" || len(t) > 36 || t[0] == '.' {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// reservedMountPoints are guest paths a share may not cover.
var reservedMountPoints = []string{"/", "/proc", "/sys", "/dev", "/run", "/tmp", "/etc", "/var/lib/berth"}

func parseShares(val string) ([]Share, error) {
	if val == "" {
		return nil, nil
	}
	var shares []Share
	for _, item := range strings.Split(val, ",") {
		tag, p, ok := strings.Cut(item, "=")
		if !ok || tag == "" || len(tag) > 36 || !path.IsAbs(p) || path.Clean(p) != p {
			return nil, fmt.Errorf("%w: berth.shares item %q", ErrBadParam, item)
		}
		for _, r := range reservedMountPoints {
			if p == r || (r != "/" && strings.HasPrefix(r, p+"/")) || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") || strings.HasPrefix(p, "/dev/") {
				return nil, fmt.Errorf("%w: berth.shares path %q is reserved", ErrBadParam, p)
			}
		}
		shares = append(shares, Share{Tag: tag, Path: p})
	}
	return shares, nil
}
