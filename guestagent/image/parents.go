//go:build linux

package image

import (
	goruntime "runtime"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

// Parents, as dockerd keeps them: an image committed on top of another
// (docker commit, each step of a build) records that image as its parent.
// An untagged image with children is an intermediate image: `docker
// images` hides it without -a, and removing its last child removes it too
// unless --no-prune is given.

// hasChildren says whether an image names id as its parent. The caller
// holds s.mu.
func (ix *index) hasChildren(id digest.Digest) bool {
	for _, r := range ix.Images {
		if r.Parent == id {
			return true
		}
	}
	return false
}

// intermediate says whether id is an untagged image with children.
func (ix *index) intermediate(id digest.Digest) bool {
	return len(ix.refsOf(id)) == 0 && ix.hasChildren(id)
}

// pruneParents removes the untagged parents of a removed image that have
// no other children and that no container uses, walking up the chain.
// The caller holds s.mu.
func (s *Store) pruneParents(parent digest.Digest) []imagetypes.DeleteResponse {
	var out []imagetypes.DeleteResponse
	for parent != "" {
		r, ok := s.ix.Images[parent]
		if !ok || len(s.ix.refsOf(parent)) > 0 || s.ix.hasChildren(parent) || len(s.usedBy(parent)) > 0 {
			return out
		}
		next := r.Parent
		recs, err := s.imageDelete(parent.String(), parent, false)
		if err != nil {
			s.log.Warn("removing an intermediate image", "image", parent, "err", err)
			return out
		}
		out = append(out, recs...)
		parent = next
	}
	return out
}

// scratchConfig is the config of the empty image FROM scratch starts
// from: this machine's platform and nothing else.
func scratchConfig() *dockerspec.DockerOCIImage {
	var c dockerspec.DockerOCIImage
	c.OS = "linux"
	c.Architecture = goruntime.GOARCH
	return &c
}
