package qemu

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

func baseConfig() machine.Config {
	return machine.Config{
		Name:           "berth",
		CPUs:           2,
		MemoryMiB:      2048,
		Disk:           machine.Disk{Path: "/home/u/.berth/data.img", SizeBytes: 64 << 30},
		Kernel:         "/k/vmlinuz",
		Initrd:         "/k/initrd",
		ConsoleLogPath: "/home/u/.berth/console.log",
		StateDir:       "/home/u/.berth/run",
	}
}

// argPairs returns the values following each occurrence of flag.
func argValues(args []string, flag string) []string {
	var vals []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			vals = append(vals, args[i+1])
		}
	}
	return vals
}

func TestBuildArgs(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name    string
		mod     func(*machine.Config)
		env     hostEnv
		want    map[string][]string // flag -> values that must all be present
		absent  []string            // values that must not appear anywhere
		cmdline []string            // words the -append value must contain
	}{
		{
			name: "tcg serial amd64",
			env:  hostEnv{Now: now, DirectIO: true},
			want: map[string][]string{
				"-accel":  {"tcg,thread=multi"},
				"-cpu":    {"max"},
				"-M":      {"q35"},
				"-smp":    {"2"},
				"-m":      {"2048"},
				"-kernel": {"/k/vmlinuz"},
				"-initrd": {"/k/initrd"},
				"-drive":  {"file=/home/u/.berth/data.img,format=raw,if=none,id=d0,cache=none,aio=threads,discard=unmap"},
				"-device": {"virtio-blk-pci,drive=d0", "virtio-serial-pci", "virtserialport,chardev=link,name=berth.link", "virtio-net-pci,netdev=n0"},
				"-chardev": {"socket,id=link,path=/home/u/.berth/run/link.sock,server=on,wait=off",
					"file,id=con0,path=/home/u/.berth/console.log"},
				"-qmp":    {"unix:/home/u/.berth/run/qmp.sock,server=on,wait=off"},
				"-netdev": {"user,id=n0"},
			},
			absent:  []string{"vhost-vsock-pci", "-numa"},
			cmdline: []string{"console=ttyS0", "panic=-1", "berth.link=serial", "berth.time=1700000000"},
		},
		{
			name: "kvm vsock",
			env:  hostEnv{Now: now, KVM: true, VsockCID: 42, DirectIO: true},
			want: map[string][]string{
				"-accel":  {"kvm"},
				"-cpu":    {"host"},
				"-device": {"vhost-vsock-pci,guest-cid=42"},
			},
			absent:  []string{"virtio-serial-pci", "berth.link=serial"},
			cmdline: []string{"berth.link=vsock"},
		},
		{
			name: "shares need memfd memory and a vhost-user-fs device each",
			mod: func(c *machine.Config) {
				c.Shares = []machine.Share{
					{Tag: "home", HostPath: "/home/u", GuestPath: "/home/u"},
					{Tag: "tmp", HostPath: "/tmp", GuestPath: "/tmp"},
				}
			},
			env: hostEnv{Now: now},
			want: map[string][]string{
				"-object": {"memory-backend-memfd,id=mem,size=2048M,share=on"},
				"-numa":   {"node,memdev=mem"},
				"-device": {"vhost-user-fs-pci,chardev=fs0,tag=home", "vhost-user-fs-pci,chardev=fs1,tag=tmp"},
				"-chardev": {"socket,id=fs0,path=/home/u/.berth/run/fs0.sock",
					"socket,id=fs1,path=/home/u/.berth/run/fs1.sock"},
			},
			cmdline: []string{"berth.shares=home=/home/u,tmp=/tmp"},
		},
		{
			name: "no O_DIRECT falls back to writeback; commas escaped",
			mod: func(c *machine.Config) {
				c.Disk.Path = "/tmp/a,b/data.img"
			},
			env: hostEnv{Now: now},
			want: map[string][]string{
				"-drive": {"file=/tmp/a,,b/data.img,format=raw,if=none,id=d0,cache=writeback,aio=threads,discard=unmap"},
			},
		},
		{
			name: "arm64",
			mod:  func(c *machine.Config) { c.Arch = machine.ArchARM64 },
			env:  hostEnv{Now: now},
			want: map[string][]string{
				"-M":   {"virt"},
				"-cpu": {"cortex-a57"},
			},
			cmdline: []string{"console=ttyAMA0"},
		},
		{
			name: "extra kernel words last, no console log",
			mod: func(c *machine.Config) {
				c.Cmdline = []string{"berth.disk=/dev/vdb", "loglevel=7"}
				c.ConsoleLogPath = ""
			},
			env:     hostEnv{Now: now},
			want:    map[string][]string{"-serial": {"null"}},
			cmdline: []string{"berth.disk=/dev/vdb", "loglevel=7"},
		},
		{
			name:   "no disk",
			mod:    func(c *machine.Config) { c.Disk = machine.Disk{} },
			env:    hostEnv{Now: now},
			absent: []string{"virtio-blk-pci,drive=d0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			args, err := buildArgs(cfg, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			for flag, vals := range tc.want {
				got := argValues(args, flag)
				for _, v := range vals {
					if !slices.Contains(got, v) {
						t.Errorf("%s %q missing; have %q", flag, v, got)
					}
				}
			}
			joined := strings.Join(args, " ")
			for _, a := range tc.absent {
				if strings.Contains(joined, a) {
					t.Errorf("%q present in %s", a, joined)
				}
			}
			app := argValues(args, "-append")
			if len(app) != 1 {
				t.Fatalf("-append given %d times", len(app))
			}
			words := strings.Fields(app[0])
			for _, w := range tc.cmdline {
				if !slices.Contains(words, w) {
					t.Errorf("kernel word %q missing from %q", w, app[0])
				}
			}
			if n := len(cfg.Cmdline); n > 0 && !slices.Equal(words[len(words)-n:], cfg.Cmdline) {
				t.Errorf("extra words not last: %q", app[0])
			}
		})
	}
}

func TestBuildArgsSocketPathTooLong(t *testing.T) {
	cfg := baseConfig()
	cfg.StateDir = "/" + strings.Repeat("d", 100)
	if _, err := buildArgs(cfg, hostEnv{}); !errors.Is(err, machine.ErrInvalidConfig) {
		t.Fatalf("error %v, want ErrInvalidConfig", err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		d    Driver
		mod  func(*machine.Config)
		want error
	}{
		{"read-only share", Driver{QEMU: "true", Virtiofsd: "true"}, func(c *machine.Config) {
			c.Shares = []machine.Share{{Tag: "a", HostPath: "/a", GuestPath: "/a", ReadOnly: true}}
		}, machine.ErrInvalidConfig},
		{"comma in share", Driver{QEMU: "true", Virtiofsd: "true"}, func(c *machine.Config) {
			c.Shares = []machine.Share{{Tag: "a", HostPath: "/a,b", GuestPath: "/a"}}
		}, machine.ErrInvalidConfig},
		{"missing qemu", Driver{QEMU: "berth-no-such-qemu"}, nil, machine.ErrNotAvailable},
		{"missing virtiofsd", Driver{QEMU: "true", Virtiofsd: "berth-no-such-virtiofsd"}, func(c *machine.Config) {
			c.Shares = []machine.Share{{Tag: "a", HostPath: "/a", GuestPath: "/a"}}
		}, machine.ErrNotAvailable},
		{"bad accel", Driver{QEMU: "true", Accel: "hvf"}, nil, machine.ErrInvalidConfig},
		{"invalid config", Driver{QEMU: "true"}, func(c *machine.Config) { c.CPUs = 0 }, machine.ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			if _, err := tc.d.New(cfg); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}
