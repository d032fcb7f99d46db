package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// LayersSizer is implemented by an image backend that can tell the size
// of all its layers, each counted once (docker system df).
type LayersSizer interface {
	LayersSize() int64
}

// VolumeUsager is implemented by a volume backend that reports sizes and
// reference counts (docker system df -v).
type VolumeUsager interface {
	VolumeUsage(ctx context.Context) ([]volume.Volume, error)
}

// diskUsage is the body of GET /system/df for API versions before 1.52.
type diskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []struct{}
}

// systemDF serves GET /system/df?type=container|image|volume|build-cache.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request, _ params) error {
	want := map[string]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch t {
		case "container", "image", "volume", "build-cache":
			want[t] = true
		default:
			return invalidParameterf("unknown object type: %s", t)
		}
	}
	all := len(want) == 0
	ctx := r.Context()
	du := diskUsage{BuildCache: []struct{}{}}
	var ctrs []container.Summary
	if all || want["container"] || want["image"] {
		b, err := s.containerBackend()
		if err != nil {
			return err
		}
		if ctrs, err = b.ContainerList(ctx, ListOptions{All: true, Size: all || want["container"]}); err != nil {
			return err
		}
	}
	if all || want["container"] {
		du.Containers = ctrs
		if du.Containers == nil {
			du.Containers = []container.Summary{}
		}
	}
	if all || want["image"] {
		if s.cfg.Images == nil {
			return unavailableError{msg: "the image service is not available"}
		}
		imgs, err := s.cfg.Images.ImageList(ctx, ImageListOptions{All: false, SharedSize: true})
		if err != nil {
			return err
		}
		uses := map[string]int64{}
		for _, c := range ctrs {
			uses[c.ImageID]++
		}
		for i := range imgs {
			imgs[i].Containers = uses[imgs[i].ID]
		}
		if imgs == nil {
			imgs = []image.Summary{}
		}
		du.Images = imgs
		if ls, ok := s.cfg.Images.(LayersSizer); ok {
			du.LayersSize = ls.LayersSize()
		} else {
			for _, im := range imgs {
				du.LayersSize += im.Size
			}
		}
	}
	if all || want["volume"] {
		b, err := s.volumeBackend()
		if err != nil {
			return err
		}
		if vu, ok := b.(VolumeUsager); ok {
			du.Volumes, err = vu.VolumeUsage(ctx)
		} else {
			var resp volume.ListResponse
			resp, err = b.VolumeList(ctx, Filters{})
			du.Volumes = resp.Volumes
		}
		if err != nil {
			return err
		}
		if du.Volumes == nil {
			du.Volumes = []volume.Volume{}
		}
	}
	return writeJSON(w, http.StatusOK, du)
}
