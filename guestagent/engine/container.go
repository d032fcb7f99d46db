//go:build linux

package engine

import (
	"io"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/berthdesktop/berth/guestagent/network"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"
)

// state is the persisted state of a container, in dockerd's terms.
type state struct {
	Running           bool
	Paused            bool
	Restarting        bool
	OOMKilled         bool
	RemovalInProgress bool
	Dead              bool
	Pid               int
	ExitCode          int
	Error             string
	StartedAt         time.Time
	FinishedAt        time.Time
}

// meta is what the metadata store persists of a container.
type meta struct {
	ID             string
	Name           string // with the leading "/"
	Created        time.Time
	Path           string
	Args           []string
	Config         *container.Config
	HostConfig     *container.HostConfig
	ImageID        string // "sha256:..."
	State          state
	RestartCount   int
	ManualStop     bool // stopped by the user: restart policies hold off
	ResolvConfPath string
	HostnamePath   string
	HostsPath      string
	LogPath        string
	Mounts         []container.MountPoint
	Vol            volumeState // volumes created for the container (volume.go)
	// Nets are the networks the container is connected to, by name, with
	// what was asked of each (aliases, address, MAC, links); Endpoints
	// are the live attachments while it runs (network.go).
	Nets      map[string]*mnetwork.EndpointSettings `json:",omitempty"`
	Endpoints map[string]*network.Endpoint          `json:",omitempty"`
	Health    *healthState                          `json:",omitempty"` // State.Health (health.go)
}

// ctr is a container known to the engine. mu guards everything below it;
// the engine's lock is never taken while holding mu.
type ctr struct {
	mu  sync.Mutex
	dir string
	m   meta

	h   Handle // set while a process runs (running, paused)
	run *run   // the current or last run's streams

	log     *logs.File
	streams *broadcaster

	// waiters are woken by state changes.
	waiters []*waiter
	// runStarted is closed (and replaced) whenever a run starts, so an
	// attach that came before start can find the new run's stdin.
	runStarted chan struct{}

	restart  restartState
	cancelRs chan struct{} // closed to cancel a pending restart
	execIDs  []string
	health   *healthMonitor // the running probe loop (health.go)
	dnsSrv   io.Closer      // the embedded DNS server while it runs
	removed  bool
}

// waiter is one ContainerWait caller.
type waiter struct {
	cond container.WaitCondition
	ch   chan container.WaitResponse
}

// stateString is the State column of ps and State.Status of inspect.
func (s *state) stateString() container.ContainerState {
	switch {
	case s.Running && s.Paused:
		return container.StatePaused
	case s.Restarting:
		return container.StateRestarting
	case s.Running:
		return container.StateRunning
	case s.RemovalInProgress:
		return container.StateRemoving
	case s.Dead:
		return container.StateDead
	case s.StartedAt.IsZero():
		return container.StateCreated
	}
	return container.StateExited
}

// statusString is ps's Status column, worded as dockerd words it.
func (s *state) statusString(now time.Time) string {
	if s.Running {
		if s.Paused {
			return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (Paused)"
		}
		if s.Restarting {
			return "Restarting (" + itoa(s.ExitCode) + ") " + units.HumanDuration(now.Sub(s.FinishedAt)) + " ago"
		}
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt))
	}
	if s.RemovalInProgress {
		return "Removal In Progress"
	}
	if s.Dead {
		return "Dead"
	}
	if s.StartedAt.IsZero() {
		return "Created"
	}
	if s.FinishedAt.IsZero() {
		return ""
	}
	return "Exited (" + itoa(s.ExitCode) + ") " + units.HumanDuration(now.Sub(s.FinishedAt)) + " ago"
}

func itoa(n int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// dockerTime formats t as dockerd does in inspect (zero as year 1).
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// notify wakes waiters whose condition is now met. exited says this call
// follows a process exit. Called with c.mu held.
func (c *ctr) notify(exited bool) {
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		var done bool
		switch w.cond {
		case container.WaitConditionNextExit:
			done = exited || c.removed
		case container.WaitConditionRemoved:
			done = c.removed
		default: // not-running
			done = !c.m.State.Running || c.removed
		}
		if done {
			w.ch <- container.WaitResponse{StatusCode: int64(c.m.State.ExitCode)}
			close(w.ch)
			continue
		}
		keep = append(keep, w)
	}
	c.waiters = keep
}
