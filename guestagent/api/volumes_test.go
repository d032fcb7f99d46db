package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
)

type notFound struct{ error }

func (notFound) NotFound() {}

// fakeStorage serves the volume and archive routes from memory.
type fakeStorage struct {
	vols      map[string]volume.Volume
	extracted string
	opts      ExtractOptions
}

func (f *fakeStorage) VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	v := volume.Volume{Name: req.Name, Driver: "local", Labels: req.Labels, Options: req.DriverOpts, Scope: "local"}
	f.vols[req.Name] = v
	return &v, nil
}
func (f *fakeStorage) VolumeInspect(ctx context.Context, name string) (*volume.Volume, error) {
	v, ok := f.vols[name]
	if !ok {
		return nil, notFound{errors.New("get " + name + ": no such volume")}
	}
	return &v, nil
}
func (f *fakeStorage) VolumeList(ctx context.Context, filters Filters) (volume.ListResponse, error) {
	var out volume.ListResponse
	for _, v := range f.vols {
		if len(filters["name"]) == 0 || strings.Contains(v.Name, filters["name"][0]) {
			out.Volumes = append(out.Volumes, v)
		}
	}
	return out, nil
}
func (f *fakeStorage) VolumeRemove(ctx context.Context, name string, force bool) error {
	if _, ok := f.vols[name]; !ok && !force {
		return notFound{errors.New("remove " + name + ": no such volume")}
	}
	delete(f.vols, name)
	return nil
}
func (f *fakeStorage) VolumePrune(ctx context.Context, filters Filters) (*volume.PruneReport, error) {
	return &volume.PruneReport{}, nil
}
func (f *fakeStorage) ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error) {
	if path != "/etc" {
		return nil, notFound{errors.New("Could not find the file " + path + " in container " + name)}
	}
	return &container.PathStat{Name: "etc", Mode: 0o755 | 1<<31, Mtime: time.Unix(1, 0).UTC()}, nil
}
func (f *fakeStorage) ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error) {
	st, err := f.ContainerStatPath(ctx, name, path)
	if err != nil {
		return nil, nil, err
	}
	return io.NopCloser(strings.NewReader("TAR")), st, nil
}
func (f *fakeStorage) ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, content io.Reader) error {
	b, _ := io.ReadAll(content)
	f.extracted, f.opts = path+":"+string(b), opts
	return nil
}
func (f *fakeStorage) ContainerExport(ctx context.Context, name string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("EXPORT")), nil
}
func (f *fakeStorage) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	return nil, nil
}

func TestVolumeRoutes(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	resp, body := ts.do(t, "GET", "/v1.51/volumes", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no volume backend: %d %s", resp.StatusCode, body)
	}
	fs := &fakeStorage{vols: map[string]volume.Volume{}}
	ts.srv.cfg.Volumes, ts.srv.cfg.Archive = fs, fs

	resp, body = ts.do(t, "POST", "/v1.51/volumes/create", "application/json", `{"Name":"v1","Labels":{"a":"b"}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(body, `"Name":"v1"`) {
		t.Errorf("create: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/v1.51/volumes?filters="+`{"name":{"v":true}}`, "", "")
	var list volume.ListResponse
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Volumes) != 1 || list.Warnings == nil {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/v1.51/volumes/nope", "", "")
	if resp.StatusCode != 404 || errorMessage(t, body) != "get nope: no such volume" {
		t.Errorf("inspect missing: %d %s", resp.StatusCode, body)
	}
	if resp, body = ts.do(t, "DELETE", "/v1.51/volumes/v1", "", ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("remove: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "POST", "/v1.51/volumes/prune", "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"VolumesDeleted":[]`) {
		t.Errorf("prune: %d %s", resp.StatusCode, body)
	}

	// docker cp: the stat header, the tar, the extract options.
	resp, _ = ts.do(t, "HEAD", "/v1.51/containers/c1/archive?path=/etc", "", "")
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	var st container.PathStat
	if err != nil || json.Unmarshal(raw, &st) != nil || st.Name != "etc" || !st.Mode.IsDir() {
		t.Errorf("stat header %q: %v %+v", resp.Header.Get("X-Docker-Container-Path-Stat"), err, st)
	}
	resp, body = ts.do(t, "GET", "/v1.51/containers/c1/archive?path=/etc", "", "")
	if resp.StatusCode != 200 || body != "TAR" || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Errorf("archive: %d %q", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/v1.51/containers/c1/archive?path=/x", "", "")
	if resp.StatusCode != 404 {
		t.Errorf("archive of a missing path: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/v1.51/containers/c1/archive", "", "")
	if resp.StatusCode != 400 {
		t.Errorf("archive without a path: %d %s", resp.StatusCode, body)
	}
	resp, _ = ts.do(t, "PUT", "/v1.51/containers/c1/archive?path=/tmp&copyUIDGID=1&noOverwriteDirNonDir=true", "application/x-tar", "DATA")
	if resp.StatusCode != 200 || fs.extracted != "/tmp:DATA" || !fs.opts.CopyUIDGID || !fs.opts.NoOverwriteDirNonDir {
		t.Errorf("extract: %d %q %+v", resp.StatusCode, fs.extracted, fs.opts)
	}
	if resp, body = ts.do(t, "GET", "/v1.51/containers/c1/changes", "", ""); resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("changes: %d %q", resp.StatusCode, body)
	}
	if resp, body = ts.do(t, "GET", "/v1.51/containers/c1/export", "", ""); resp.StatusCode != 200 || body != "EXPORT" {
		t.Errorf("export: %d %q", resp.StatusCode, body)
	}
	if resp, body = ts.do(t, "GET", "/v1.51/system/df?type=bogus", "", ""); resp.StatusCode != 400 {
		t.Errorf("df with a bad type: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/v1.51/system/df?type=volume", "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"Volumes":[]`) || !strings.Contains(body, `"BuildCache":[]`) {
		t.Errorf("df volumes: %d %s", resp.StatusCode, body)
	}
}
