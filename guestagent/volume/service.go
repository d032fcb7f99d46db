//go:build linux

package volume

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/volume"
)

// VolumeCreate implements api.VolumeBackend.
func (s *Store) VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	v, err := s.Create(req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// VolumeInspect implements api.VolumeBackend.
func (s *Store) VolumeInspect(ctx context.Context, name string) (*volume.Volume, error) {
	v, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// VolumeRemove implements api.VolumeBackend.
func (s *Store) VolumeRemove(ctx context.Context, name string, force bool) error {
	return s.Remove(name, force)
}

// VolumeList implements api.VolumeBackend: filters dangling, driver,
// label (key or key=value) and name (substring), as dockerd.
func (s *Store) VolumeList(ctx context.Context, filters api.Filters) (volume.ListResponse, error) {
	match, err := s.matcher(filters, []string{"dangling", "driver", "label", "name"})
	if err != nil {
		return volume.ListResponse{}, err
	}
	resp := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range s.List(false) {
		if match(v) {
			resp.Volumes = append(resp.Volumes, v)
		}
	}
	return resp, nil
}

// VolumePrune implements api.VolumeBackend: unreferenced anonymous
// volumes go, and named ones too with the filter all=true; label and
// label! filters narrow the set.
func (s *Store) VolumePrune(ctx context.Context, filters api.Filters) (*volume.PruneReport, error) {
	all := false
	if vals, ok := filters["all"]; ok {
		for _, v := range vals {
			switch strings.ToLower(v) {
			case "1", "true":
				all = true
			case "0", "false":
			default:
				return nil, invalidError{fmt.Errorf("invalid filter 'all=%s'", v)}
			}
		}
	}
	rest := api.Filters{}
	for k, v := range filters {
		if k != "all" {
			rest[k] = v
		}
	}
	match, err := s.matcher(rest, []string{"label", "label!"})
	if err != nil {
		return nil, err
	}
	rep := &volume.PruneReport{VolumesDeleted: []string{}}
	for _, v := range s.List(false) {
		if !match(v) {
			continue
		}
		if _, anon := v.Labels[AnonymousLabel]; !anon && !all {
			continue
		}
		size, _ := s.Size(v.Name)
		s.mu.Lock()
		sv, ok := s.vols[v.Name]
		if !ok || len(sv.refs) > 0 {
			s.mu.Unlock()
			continue
		}
		err := s.removeLocked(sv)
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("pruning volume", "volume", v.Name, "err", err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// matcher validates filters against the allowed keys and returns a
// predicate on volumes.
func (s *Store) matcher(filters api.Filters, allowed []string) (func(volume.Volume) bool, error) {
	for k, vals := range filters {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
			}
		}
		if !ok {
			return nil, invalidError{fmt.Errorf("invalid filter '%s'", k)}
		}
		if k == "dangling" {
			for _, v := range vals {
				switch strings.ToLower(v) {
				case "1", "true", "0", "false":
				default:
					return nil, invalidError{fmt.Errorf("invalid filter 'dangling=%s'", v)}
				}
			}
		}
	}
	return func(v volume.Volume) bool {
		for k, vals := range filters {
			if len(vals) == 0 {
				continue
			}
			switch k {
			case "name":
				if !anyOf(vals, func(x string) bool { return strings.Contains(v.Name, x) }) {
					return false
				}
			case "driver":
				if !anyOf(vals, func(x string) bool { return x == v.Driver }) {
					return false
				}
			case "label":
				for _, x := range vals {
					if !hasLabel(v.Labels, x) {
						return false
					}
				}
			case "label!":
				for _, x := range vals {
					if hasLabel(v.Labels, x) {
						return false
					}
				}
			case "dangling":
				want := anyOf(vals, func(x string) bool { return x == "1" || strings.EqualFold(x, "true") })
				if s.referenced(v.Name) == want {
					return false
				}
			}
		}
		return true
	}, nil
}

func (s *Store) referenced(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	return ok && len(v.refs) > 0
}

func anyOf(vals []string, f func(string) bool) bool {
	for _, v := range vals {
		if f(v) {
			return true
		}
	}
	return false
}

// hasLabel matches "key" (present) or "key=value".
func hasLabel(labels map[string]string, filter string) bool {
	k, want, withValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	if !ok {
		return false
	}
	return !withValue || got == want
}

// VolumeUsage implements api.VolumeUsager: every volume with its
// reference count and size.
func (s *Store) VolumeUsage(ctx context.Context) ([]volume.Volume, error) {
	return s.List(true), nil
}
