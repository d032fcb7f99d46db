// Package image owns the engine's images: the index of image configs and
// manifests, names and tags, layer application with whiteouts into the
// snapshotter, docker load (docker-save tarballs and OCI layouts), docker
// import, deletion with shared layers kept, and the image side of the
// Docker Engine API (it implements api.ImageBackend).
package image

import (
	"errors"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
)

// errNotImplemented marks parts of the contract that are not written yet.
var errNotImplemented = errors.New("image: not implemented")

// Image is what the engine needs to know of an image to create a container.
type Image struct {
	ID       digest.Digest // digest of the config blob
	RepoTags []string
	// Config is the image config (OCI with Docker's extensions:
	// Healthcheck, OnBuild, Shell).
	Config dockerspec.DockerOCIImage
}

// Mount is one mount of a container's rootfs.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Store is the image store.
type Store struct{}

// Resolve finds an image by name[:tag], name@digest, full or short ID (with
// or without "sha256:"). A miss is an error with NotFound() whose message is
// dockerd's: "No such image: NAME".
func (s *Store) Resolve(ref string) (*Image, error) { return nil, errNotImplemented }

// PrepareRootfs creates a fresh writable layer for container key on top of
// the image's layers and returns the mounts that make up its rootfs.
func (s *Store) PrepareRootfs(key string, imageID digest.Digest) ([]Mount, error) {
	return nil, errNotImplemented
}

// RootfsMounts returns the mounts of an existing container layer (after an
// engine restart).
func (s *Store) RootfsMounts(key string) ([]Mount, error) { return nil, errNotImplemented }

// RootfsSize returns the size of the container layer's own changes and of
// the whole rootfs (docker ps -s).
func (s *Store) RootfsSize(key string) (rw, total int64, err error) { return 0, 0, errNotImplemented }

// RemoveRootfs deletes the container's writable layer.
func (s *Store) RemoveRootfs(key string) error { return errNotImplemented }

// SetUsage tells the store which images containers use, so that rmi refuses
// (409, dockerd's message) unless forced.
func (s *Store) SetUsage(inUse func(imageID digest.Digest) (containerIDs []string)) {}
