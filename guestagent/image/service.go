//go:build linux

package image

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	digest "github.com/opencontainers/go-digest"
)

var _ api.ImageBackend = (*Store)(nil)

// ImageList serves GET /images/json. Every image is listed (untagged ones
// too, as <none>); there are no intermediate images, so All changes
// nothing. Filters: dangling, label, reference, before, since.
func (s *Store) ImageList(ctx context.Context, opts api.ImageListOptions) ([]imagetypes.Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range opts.Filters {
		switch k {
		case "dangling", "label", "reference", "before", "since":
		default:
			return nil, invalidf("invalid filter '%s'", k)
		}
	}
	var danglingWant *bool
	for _, v := range opts.Filters["dangling"] {
		var b bool
		switch strings.ToLower(v) {
		case "true", "1":
			b = true
		case "false", "0":
			b = false
		default:
			return nil, invalidf("invalid filter 'dangling=%s'", v)
		}
		danglingWant = &b
	}
	var before, since *time.Time
	for _, pair := range []struct {
		key string
		dst **time.Time
	}{{"before", &before}, {"since", &since}} {
		for _, v := range opts.Filters[pair.key] {
			id, err := s.lookup(v)
			if err != nil {
				return nil, err
			}
			cfg, err := s.config(id)
			if err != nil {
				return nil, err
			}
			t := time.Time{}
			if cfg.Created != nil {
				t = *cfg.Created
			}
			*pair.dst = &t
		}
	}
	var layerUsers map[digest.Digest]int
	if opts.SharedSize {
		layerUsers = s.layerUsers()
	}
	out := []imagetypes.Summary{}
	for id, r := range s.ix.Images {
		cfg, err := s.config(id)
		if err != nil {
			s.log.Warn("listing image", "image", id, "err", err)
			continue
		}
		tags, digests := s.familiarRefs(id)
		if !opts.All && s.ix.intermediate(id) {
			continue
		}
		if danglingWant != nil && *danglingWant != (len(tags) == 0) {
			continue
		}
		if !matchLabels(cfg.Config.Labels, opts.Filters["label"]) {
			continue
		}
		if refs := opts.Filters["reference"]; len(refs) > 0 {
			var err error
			tags, digests, err = filterReferences(refs, tags, digests)
			if err != nil {
				return nil, err
			}
			if len(tags) == 0 && len(digests) == 0 {
				continue
			}
		}
		var created time.Time
		if cfg.Created != nil {
			created = *cfg.Created
		}
		if before != nil && !created.Before(*before) {
			continue
		}
		if since != nil && !created.After(*since) {
			continue
		}
		labels := cfg.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, imagetypes.Summary{
			ID:          id.String(),
			RepoTags:    tags,
			RepoDigests: digests,
			Created:     created.Unix(),
			Size:        s.imageSize(r),
			SharedSize:  s.sharedSize(r, layerUsers),
			Labels:      labels,
			Containers:  -1, // as dockerd: counted only for system df
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created > out[j].Created
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// matchLabels reports whether labels satisfy every "key" or "key=value"
// filter.
func matchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// filterReferences keeps the tags and digests matching any of the
// patterns, as dockerd's reference filter does.
func filterReferences(patterns, tags, digests []string) ([]string, []string, error) {
	keep := func(refs []string) ([]string, error) {
		var out []string
		for _, r := range refs {
			ref, err := reference.ParseNormalizedNamed(r)
			if err != nil {
				continue
			}
			for _, p := range patterns {
				ok, err := reference.FamiliarMatch(p, ref)
				if err != nil {
					return nil, invalidf("invalid reference filter %q: %w", p, err)
				}
				if ok {
					out = append(out, r)
					break
				}
			}
		}
		return out, nil
	}
	t, err := keep(tags)
	if err != nil {
		return nil, nil, err
	}
	d, err := keep(digests)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		t = []string{}
	}
	if d == nil {
		d = []string{}
	}
	return t, d, nil
}

// ImageInspect serves GET /images/{name}/json.
func (s *Store) ImageInspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	r := s.ix.Images[id]
	cfg, err := s.config(id)
	if err != nil {
		return nil, err
	}
	tags, digests := s.familiarRefs(id)
	resp := &imagetypes.InspectResponse{
		ID:           id.String(),
		RepoTags:     tags,
		RepoDigests:  digests,
		Author:       cfg.Author,
		Config:       &cfg.Config,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		OsVersion:    cfg.OSVersion,
		Size:         s.imageSize(r),
		RootFS:       imagetypes.RootFS{Type: "layers"},
		Metadata:     imagetypes.Metadata{LastTagTime: r.LastTagTime},
		GraphDriver:  s.graphDriver(r),
	}
	if cfg.Created != nil {
		resp.Created = cfg.Created.Format(time.RFC3339Nano)
	}
	if n := len(cfg.History); n > 0 {
		resp.Comment = cfg.History[n-1].Comment
	}
	for _, d := range r.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	return resp, nil
}

func (s *Store) graphDriver(r *record) *storage.DriverData {
	gd := &storage.DriverData{Name: "overlay2", Data: map[string]string{}}
	if r.ChainID == "" {
		return gd
	}
	chain, err := s.snap.Chain(r.ChainID)
	if err != nil || len(chain) == 0 {
		return gd
	}
	dirOf := func(c digest.Digest) string {
		return filepath.Join(s.snap.Root(), "layers", c.Encoded())
	}
	gd.Data["UpperDir"] = filepath.Join(dirOf(chain[0].ChainID), "fs")
	gd.Data["WorkDir"] = filepath.Join(dirOf(chain[0].ChainID), "work")
	gd.Data["MergedDir"] = filepath.Join(dirOf(chain[0].ChainID), "merged")
	var lowers []string
	for _, l := range chain[1:] {
		lowers = append(lowers, filepath.Join(dirOf(l.ChainID), "fs"))
	}
	if len(lowers) > 0 {
		gd.Data["LowerDir"] = strings.Join(lowers, ":")
	}
	return gd
}

// ImageHistory serves GET /images/{name}/history, newest first.
func (s *Store) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	r := s.ix.Images[id]
	cfg, err := s.config(id)
	if err != nil {
		return nil, err
	}
	sizes := s.layerSizes(r)
	var items []imagetypes.HistoryResponseItem
	layer := 0
	for _, h := range cfg.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		items = append(items, item)
	}
	// Layers the history does not account for.
	for ; layer < len(sizes); layer++ {
		items = append(items, imagetypes.HistoryResponseItem{ID: "<missing>", Size: sizes[layer], Tags: []string{}})
	}
	if len(items) == 0 {
		items = append(items, imagetypes.HistoryResponseItem{Tags: []string{}})
		if cfg.Created != nil {
			items[0].Created = cfg.Created.Unix()
		}
	}
	slices.Reverse(items)
	items[0].ID = id.String()
	items[0].Tags, _ = s.familiarRefs(id)
	return items, nil
}

// ImageTag serves POST /images/{name}/tag.
func (s *Store) ImageTag(ctx context.Context, source, repo, tag string) error {
	named, err := parseTarget(repo, tag)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(source)
	if err != nil {
		return err
	}
	next := s.ix.clone()
	next.Refs[named.String()] = id
	next.Images[id].LastTagTime = time.Now().UTC()
	if err := s.commitIndex(next); err != nil {
		return err
	}
	s.emit(events.ActionTag, id, reference.FamiliarString(named))
	return nil
}

// parseTarget turns repo and tag into a tagged reference (tag "latest"
// when empty).
func parseTarget(repo, tag string) (reference.NamedTagged, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, &invalidError{err: err}
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, invalidf("refusing to create a tag with a digest reference")
	}
	if t, ok := named.(reference.NamedTagged); ok {
		if tag != "" && tag != t.Tag() {
			return nil, invalidf("invalid reference format: %s:%s", repo, tag)
		}
		return t, nil
	}
	if tag == "" {
		tag = "latest"
	}
	t, err := reference.WithTag(named, tag)
	if err != nil {
		return nil, &invalidError{err: err}
	}
	return t, nil
}

// ImageDelete serves DELETE /images/{name} with dockerd's rules: removing
// a name only untags unless it was the last one; removing by ID removes
// the image when at most one repository names it; containers block
// removal (running ones even when forced); layers shared with other images
// or containers stay.
func (s *Store) ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	parent := digest.Digest("")
	if r, ok := s.ix.Images[id]; ok {
		parent = r.Parent
	}
	records, err := s.imageDelete(name, id, force)
	if _, still := s.ix.Images[id]; err == nil && !still && !noPrune {
		records = append(records, s.pruneParents(parent)...)
	}
	for _, r := range records {
		switch {
		case r.Untagged != "":
			s.emit(events.ActionUnTag, id, id.String())
		case r.Deleted == id.String():
			s.emit(events.ActionDelete, id, id.String())
		}
	}
	return records, err
}

// imageDelete does ImageDelete's work on the image name resolved to; the
// caller holds s.mu.
func (s *Store) imageDelete(name string, id digest.Digest, force bool) ([]imagetypes.DeleteResponse, error) {
	next := s.ix.clone()
	records := []imagetypes.DeleteResponse{}
	refs := parsedRefs(next.refsOf(id))
	users := s.usedBy(id)
	byID := isIDPrefix(id, name)

	if !byID {
		if !force && isSingleReference(refs) && len(users) > 0 {
			return nil, &conflictError{msg: fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, shortID(users[0].ID), shortID(id.String()))}
		}
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, &invalidError{err: err}
		}
		named = reference.TagNameOnly(named)
		delete(next.Refs, named.String())
		records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(named)})
		// The last tag of a repository takes that repository's digests.
		if _, canonical := named.(reference.Canonical); !canonical {
			sameRepoTag := false
			for _, r := range parsedRefs(next.refsOf(id)) {
				if _, c := r.(reference.Canonical); !c && r.Name() == named.Name() {
					sameRepoTag = true
				}
			}
			if !sameRepoTag {
				for _, r := range parsedRefs(next.refsOf(id)) {
					if _, c := r.(reference.Canonical); c && r.Name() == named.Name() {
						delete(next.Refs, r.String())
						records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(r)})
					}
				}
			}
		}
		if len(next.refsOf(id)) > 0 {
			return records, s.commitIndex(next)
		}
		// The last name went: the image goes too, unless a running
		// container (or, unforced, any container) uses it; then it
		// stays, dangling.
		if firstRunning(users) != nil || (!force && len(users) > 0) {
			return records, s.commitIndex(next)
		}
	} else {
		if isSingleReference(refs) {
			// Its one repository's names go with it, so they do not
			// count as a conflict.
			if err := s.deleteConflict(id, users, nil, force); err != nil {
				return nil, err
			}
			for _, r := range refs {
				delete(next.Refs, r.String())
				records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(r)})
			}
		}
	}
	// Remove the image itself.
	if err := s.deleteConflict(id, users, parsedRefs(next.refsOf(id)), force); err != nil {
		return nil, err
	}
	for _, r := range next.refsOf(id) {
		p, err := reference.ParseNormalizedNamed(r)
		if err == nil {
			records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(p)})
		}
		delete(next.Refs, r)
	}
	delete(next.Images, id)
	if err := s.commitIndex(next); err != nil {
		return nil, err
	}
	records = append(records, imagetypes.DeleteResponse{Deleted: id.String()})
	delete(s.configs, id)
	if err := s.content.Delete(id); err != nil {
		s.log.Warn("removing image config", "image", id, "err", err)
	}
	removed, err := s.gcLayers()
	for _, l := range removed {
		records = append(records, imagetypes.DeleteResponse{Deleted: l.String()})
	}
	if err != nil {
		return records, fmt.Errorf("image %s deleted, but removing its layers failed: %w", shortID(id.String()), err)
	}
	return records, nil
}

// deleteConflict is dockerd's check before an image goes: running
// containers always block; other names and stopped containers block
// unless forced.
func (s *Store) deleteConflict(id digest.Digest, users []ContainerUse, refs []reference.Named, force bool) error {
	if c := firstRunning(users); c != nil {
		return &conflictError{msg: fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", shortID(id.String()), shortID(c.ID))}
	}
	if force {
		return nil
	}
	if len(refs) > 0 {
		return &conflictError{msg: fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id.String()))}
	}
	if len(users) > 0 {
		return &conflictError{msg: fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", shortID(id.String()), shortID(users[0].ID))}
	}
	return nil
}

func firstRunning(users []ContainerUse) *ContainerUse {
	for i := range users {
		if users[i].Running {
			return &users[i]
		}
	}
	return nil
}

func parsedRefs(refs []string) []reference.Named {
	var out []reference.Named
	for _, r := range refs {
		if p, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// isIDPrefix reports whether what the user typed is (a prefix of) the ID.
func isIDPrefix(id digest.Digest, s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	return hexPrefix.MatchString(s) && strings.HasPrefix(id.Encoded(), s)
}

// isSingleReference reports whether refs hold at most one tag and all of
// them name one repository (dockerd's rule for removal by ID).
func isSingleReference(refs []reference.Named) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	var single reference.Named
	names := map[string]bool{}
	for _, r := range refs {
		if _, c := r.(reference.Canonical); c {
			names[r.Name()] = true
		} else if single == nil {
			names[r.Name()] = true
			single = r
		} else {
			return false
		}
	}
	if single == nil {
		single = refs[0]
	}
	return len(names) == 1 && names[single.Name()]
}

// layerUsers counts the images built on each layer (by chain ID); the
// caller holds s.mu.
func (s *Store) layerUsers() map[digest.Digest]int {
	users := map[digest.Digest]int{}
	for _, r := range s.ix.Images {
		for _, c := range chainIDs(r.DiffIDs) {
			users[c]++
		}
	}
	return users
}

// sharedSize is the size of an image's layers that other images use too
// (docker system df's SHARED SIZE), or -1 when not asked for.
func (s *Store) sharedSize(r *record, users map[digest.Digest]int) int64 {
	if users == nil {
		return -1
	}
	var n int64
	sizes := s.layerSizes(r)
	for i, c := range chainIDs(r.DiffIDs) {
		if users[c] > 1 {
			n += sizes[i]
		}
	}
	return n
}
