//go:build linux

package image

import (
	"context"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

// ImagePrune serves POST /images/prune: it removes the images without a
// name (or, with dangling=false, every image), keeping those containers
// use. Filters: dangling, until (a duration or a time), label, label!.
func (s *Store) ImagePrune(ctx context.Context, filters api.Filters) (*imagetypes.PruneReport, error) {
	danglingOnly := true
	for k, vals := range filters {
		switch k {
		case "dangling":
			for _, v := range vals {
				switch strings.ToLower(v) {
				case "true", "1":
					danglingOnly = true
				case "false", "0":
					danglingOnly = false
				default:
					return nil, invalidf("invalid filter 'dangling=%s'", v)
				}
			}
		case "until", "label", "label!":
		default:
			return nil, invalidf("invalid filter '%s'", k)
		}
	}
	var until time.Time
	hasUntil := false
	for _, v := range filters["until"] {
		t, err := parseUntil(v)
		if err != nil {
			return nil, err
		}
		until, hasUntil = t, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	report := &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	before := s.totalLayerSize()
	var doomed []digest.Digest
	for id := range s.ix.Images {
		if danglingOnly && len(s.ix.refsOf(id)) > 0 {
			continue
		}
		if len(s.usedBy(id)) > 0 {
			continue
		}
		cfg, err := s.config(id)
		if err != nil {
			continue
		}
		if hasUntil && (cfg.Created == nil || !cfg.Created.Before(until)) {
			continue
		}
		if !matchLabels(cfg.Config.Labels, filters["label"]) {
			continue
		}
		if neg := filters["label!"]; len(neg) > 0 && anyLabel(cfg.Config.Labels, neg) {
			continue
		}
		doomed = append(doomed, id)
	}
	for _, id := range doomed {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		records, err := s.imageDelete(id.String(), id, true)
		for _, r := range records {
			switch {
			case r.Untagged != "":
				s.emit(events.ActionUnTag, id, id.String())
			case r.Deleted == id.String():
				s.emit(events.ActionDelete, id, id.String())
			}
		}
		report.ImagesDeleted = append(report.ImagesDeleted, records...)
		if err != nil {
			return report, err
		}
	}
	if after := s.totalLayerSize(); after < before {
		report.SpaceReclaimed = uint64(before - after)
	}
	return report, nil
}

// anyLabel reports whether labels satisfy any of the "key" or "key=value"
// filters.
func anyLabel(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		if matchLabels(labels, []string{f}) {
			return true
		}
	}
	return false
}

// parseUntil reads an until filter: a Go duration (before now), RFC 3339
// time, or Unix seconds.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if secs, frac, ok := strings.Cut(v, "."); ok || secs != "" {
		var err error
		if sec, err = parseInt(secs); err == nil {
			if ok {
				frac = (frac + "000000000")[:9]
				nsec, err = parseInt(frac)
			}
			if err == nil {
				return time.Unix(sec, nsec), nil
			}
		}
	}
	return time.Time{}, invalidf("invalid filter 'until=%s'", v)
}

func parseInt(s string) (int64, error) {
	if s == "" {
		return 0, invalidf("empty number")
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, invalidf("invalid number %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// totalLayerSize sums the sizes of all committed layers.
func (s *Store) totalLayerSize() int64 {
	ids, err := s.snap.Layers()
	if err != nil {
		return 0
	}
	var n int64
	for _, id := range ids {
		if info, err := s.snap.Layer(id); err == nil {
			n += info.Size
		}
	}
	return n
}
