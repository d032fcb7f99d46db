//go:build linux

package engine

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/container"
)

var psFilterKeys = map[string]bool{
	"id": true, "name": true, "label": true, "status": true, "exited": true,
	"ancestor": true, "before": true, "since": true, "network": true, "volume": true,
	"health": true, "expose": true, "publish": true, "is-task": true,
}

// psFilter is a validated docker ps filter set.
type psFilter struct {
	ids, names, labels, statuses []string
	nameRes                      []*regexp.Regexp
	exited                       []int
	ancestors                    []string // image IDs ("sha256:...") or names
	networks, volumes, health    []string
	expose, publish, isTask      []string
	before, since                *time.Time
	all                          bool
}

func (e *Engine) parsePSFilters(f api.Filters) (*psFilter, error) {
	pf := &psFilter{}
	for k, vals := range f {
		if !psFilterKeys[k] {
			return nil, invalid("invalid filter '%s'", k)
		}
		for _, v := range vals {
			switch k {
			case "id":
				pf.ids = append(pf.ids, v)
			case "name":
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, invalid("invalid filter 'name=%s': %v", v, err)
				}
				pf.nameRes = append(pf.nameRes, re)
			case "label":
				pf.labels = append(pf.labels, v)
			case "status":
				if container.ValidateContainerState(container.ContainerState(v)) != nil {
					return nil, invalid("invalid filter 'status=%s'", v)
				}
				pf.statuses = append(pf.statuses, v)
				pf.all = true
			case "exited":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, invalid("invalid filter 'exited=%s'", v)
				}
				pf.exited = append(pf.exited, n)
				pf.all = true
			case "ancestor":
				pf.ancestors = append(pf.ancestors, v)
				if img, err := e.cfg.Images.Resolve(v); err == nil {
					pf.ancestors = append(pf.ancestors, string(img.ID))
				}
			case "network":
				pf.networks = append(pf.networks, v)
			case "volume":
				pf.volumes = append(pf.volumes, v)
			case "health":
				switch v {
				case "starting", "healthy", "unhealthy", "none":
				default:
					return nil, invalid("Unrecognised filter value for health: %s", v)
				}
				pf.health = append(pf.health, v)
			case "expose":
				pf.expose = append(pf.expose, v)
			case "publish":
				pf.publish = append(pf.publish, v)
			case "is-task":
				if v != "true" && v != "false" {
					return nil, invalid("invalid filter 'is-task=%s'", v)
				}
				pf.isTask = append(pf.isTask, v)
			case "before", "since":
				c, err := e.lookup(v)
				if err != nil {
					return nil, invalid("invalid filter '%s=%s': %v", k, v, err)
				}
				c.mu.Lock()
				t := c.m.Created
				c.mu.Unlock()
				if k == "before" {
					pf.before = &t
				} else {
					pf.since = &t
				}
			}
		}
	}
	return pf, nil
}

func anyMatch[T any](list []T, fn func(T) bool) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if fn(x) {
			return true
		}
	}
	return false
}

func matchLabels(have map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := have[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// match applies every filter to m (all of each kind's values are ORed,
// kinds are ANDed; labels are ANDed, as dockerd).
func (pf *psFilter) match(m *meta) bool {
	st := m.State.stateString()
	return anyMatch(pf.ids, func(id string) bool { return strings.HasPrefix(m.ID, id) }) &&
		anyMatch(pf.nameRes, func(re *regexp.Regexp) bool {
			return re.MatchString(m.Name) || re.MatchString(strings.TrimPrefix(m.Name, "/"))
		}) &&
		matchLabels(m.Config.Labels, pf.labels) &&
		anyMatch(pf.statuses, func(s string) bool { return string(st) == s }) &&
		anyMatch(pf.exited, func(code int) bool { return st == container.StateExited && m.State.ExitCode == code }) &&
		anyMatch(pf.ancestors, func(a string) bool {
			return a == m.ImageID || a == m.Config.Image || strings.TrimPrefix(m.ImageID, "sha256:") == a ||
				(len(a) >= 4 && strings.HasPrefix(strings.TrimPrefix(m.ImageID, "sha256:"), strings.TrimPrefix(a, "sha256:")))
		}) &&
		anyMatch(pf.networks, func(n string) bool { return onNetwork(m, n) }) &&
		anyMatch(pf.volumes, func(v string) bool {
			for _, mp := range m.Mounts {
				if mp.Source == v || mp.Destination == v {
					return true
				}
			}
			return false
		}) &&
		anyMatch(pf.health, func(h string) bool { return h == healthFilterValue(m) }) &&
		anyMatch(pf.expose, func(p string) bool {
			for port := range m.Config.ExposedPorts {
				if port.String() == p || port.String() == p+"/tcp" {
					return true
				}
			}
			return false
		}) &&
		// Nothing is published until networking exists.
		anyMatch(pf.publish, func(string) bool { return false }) &&
		anyMatch(pf.isTask, func(v string) bool { return v == "false" }) &&
		(pf.before == nil || m.Created.Before(*pf.before)) &&
		(pf.since == nil || m.Created.After(*pf.since))
}

// ContainerList implements api.ContainerBackend.
func (e *Engine) ContainerList(ctx context.Context, opts api.ListOptions) ([]container.Summary, error) {
	pf, err := e.parsePSFilters(opts.Filters)
	if err != nil {
		return nil, err
	}
	all := opts.All || opts.Limit > 0 || pf.all
	var metas []meta
	for _, c := range e.containers() {
		c.mu.Lock()
		m := c.m
		c.mu.Unlock()
		metas = append(metas, m)
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].Created.After(metas[j].Created) })
	t := time.Now()
	out := []container.Summary{}
	for i := range metas {
		m := &metas[i]
		if !all && !m.State.Running {
			continue
		}
		if !pf.match(m) {
			continue
		}
		s := e.summary(m, t)
		if opts.Size {
			if rw, total, err := e.cfg.Images.RootfsSize(m.ID); err == nil {
				s.SizeRw, s.SizeRootFs = rw, total
			}
		}
		out = append(out, s)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

// summary fills a ps row as dockerd does.
func (e *Engine) summary(m *meta, t time.Time) container.Summary {
	// dockerd quotes the arguments that contain a space.
	cmd := m.Path
	for _, a := range m.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		cmd += " " + a
	}
	labels := m.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	mounts := make([]container.MountPoint, 0, len(m.Mounts))
	mounts = append(mounts, m.Mounts...)
	s := container.Summary{
		ID:      m.ID,
		Names:   []string{m.Name},
		Image:   m.Config.Image,
		ImageID: m.ImageID,
		Command: cmd,
		Created: m.Created.Unix(),
		Ports:   portSummaries(m),
		Labels:  labels,
		State:   m.State.stateString(),
		Status:  m.State.statusString(t) + healthSuffix(m),
		Mounts:  mounts,
		NetworkSettings: &container.NetworkSettingsSummary{
			Networks: e.networks(m),
		},
	}
	s.HostConfig.NetworkMode = string(m.HostConfig.NetworkMode)
	return s
}

// ContainerPrune implements api.ContainerBackend.
func (e *Engine) ContainerPrune(ctx context.Context, f api.Filters) (*container.PruneReport, error) {
	var until *time.Time
	var labels, notLabels []string
	for k, vals := range f {
		switch k {
		case "until":
			for _, v := range vals {
				t, err := parseTimestamp(v, time.Now())
				if err != nil {
					return nil, invalid("invalid filter 'until=%s': %v", v, err)
				}
				until = &t
			}
		case "label":
			labels = append(labels, vals...)
		case "label!":
			notLabels = append(notLabels, vals...)
		default:
			return nil, invalid("invalid filter '%s'", k)
		}
	}
	rep := &container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range e.containers() {
		c.mu.Lock()
		m := c.m
		c.mu.Unlock()
		if m.State.Running || m.State.RemovalInProgress {
			continue
		}
		if until != nil && !m.Created.Before(*until) {
			continue
		}
		if !matchLabels(m.Config.Labels, labels) {
			continue
		}
		if len(notLabels) > 0 && matchAnyLabel(m.Config.Labels, notLabels) {
			continue
		}
		rw, _, _ := e.cfg.Images.RootfsSize(m.ID)
		if err := e.remove(c, false, false); err != nil {
			e.log.Warn("prune: removing container", "container", m.ID, "err", err)
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, m.ID)
		if rw > 0 {
			rep.SpaceReclaimed += uint64(rw)
		}
	}
	return rep, nil
}

func matchAnyLabel(have map[string]string, want []string) bool {
	for _, w := range want {
		if matchLabels(have, []string{w}) {
			return true
		}
	}
	return false
}

// parseTimestamp reads the forms docker accepts for until/since: a
// duration before now ("10m"), Unix seconds with optional fraction, or an
// RFC 3339 date/time.
func parseTimestamp(v string, ref time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return ref.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			var ns int64
			if ok {
				if len(frac) > 9 {
					frac = frac[:9]
				}
				n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
				if err != nil {
					return time.Time{}, err
				}
				ns = n
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalid("cannot parse %q as a timestamp", v)
}
