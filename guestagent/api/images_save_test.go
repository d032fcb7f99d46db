package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
)

// saverBackend adds docker save and image prune to the fake.
type saverBackend struct {
	*fakeBackend
	saved   [][]string
	filters Filters
}

func (b *saverBackend) ImageSave(_ context.Context, names []string, out io.Writer) error {
	b.saved = append(b.saved, names)
	if names[0] == "missing" {
		return notFoundErr{"No such image: missing"}
	}
	if names[0] == "midway" {
		io.WriteString(out, "partial")
		return errors.New("disk gone")
	}
	_, err := io.WriteString(out, "TAR:"+strings.Join(names, ","))
	return err
}

func (b *saverBackend) ImagePrune(_ context.Context, f Filters) (*image.PruneReport, error) {
	b.filters = f
	return &image.PruneReport{ImagesDeleted: []image.DeleteResponse{{Deleted: "sha256:abc"}}, SpaceReclaimed: 42}, nil
}

func TestImageSaveAndPrune(t *testing.T) {
	b := &saverBackend{fakeBackend: &fakeBackend{}}
	ts := httptest.NewServer(New(Config{Images: b, Logger: quietLogger()}))
	defer ts.Close()
	tests := []struct {
		method, path string
		status       int
		ctype        string
		body         string // substring
	}{
		{"GET", "/v1.51/images/get?names=busybox:latest&names=other", 200, "application/x-tar", "TAR:busybox:latest,other"},
		{"GET", "/v1.51/images/team/app:1.0/get", 200, "application/x-tar", "TAR:team/app:1.0"},
		{"GET", "/v1.51/images/missing/get", 404, "application/json", "No such image: missing"},
		{"GET", "/v1.51/images/midway/get", 200, "application/x-tar", "partial"},
		{"GET", "/v1.51/images/get", 400, "application/json", "no images to save"},
		{"POST", "/v1.51/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D", 200, "application/json", `"SpaceReclaimed":42`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(string(body), tt.body) {
			t.Errorf("%s %s: %d %q %q, want %d %q %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.ctype, tt.body)
		}
	}
	if got := fmt.Sprint(b.filters["dangling"]); got != "[false]" {
		t.Errorf("prune filters %v", b.filters)
	}
	var rep image.PruneReport
	req, _ := http.NewRequest("POST", ts.URL+"/images/prune", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || len(rep.ImagesDeleted) != 1 {
		t.Errorf("prune report %+v %v", rep, err)
	}

	// A backend without them still answers 501.
	plain := httptest.NewServer(New(Config{Images: &fakeBackend{}, Logger: quietLogger()}))
	defer plain.Close()
	for _, p := range []string{"/images/get?names=x", "/images/x/get"} {
		resp, err := http.Get(plain.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("GET %s without a saver: %d", p, resp.StatusCode)
		}
	}
}
