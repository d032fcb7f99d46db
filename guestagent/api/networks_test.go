package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// fakeNetworks records what the routes hand the backend.
type fakeNetworks struct {
	created   network.CreateRequest
	connected network.ConnectRequest
	filters   Filters
}

type notFoundNet struct{ name string }

func (e notFoundNet) Error() string { return "network " + e.name + " not found" }
func (notFoundNet) NotFound()       {}

func (f *fakeNetworks) NetworkList(ctx context.Context, fl Filters) ([]network.Summary, error) {
	f.filters = fl
	return nil, nil
}
func (f *fakeNetworks) NetworkInspect(ctx context.Context, ref string) (*network.Inspect, error) {
	if ref != "front" {
		return nil, notFoundNet{ref}
	}
	return &network.Inspect{Network: network.Network{Name: "front", ID: "abc"}}, nil
}
func (f *fakeNetworks) NetworkCreate(ctx context.Context, req network.CreateRequest) (*network.CreateResponse, error) {
	f.created = req
	return &network.CreateResponse{ID: "abc"}, nil
}
func (f *fakeNetworks) NetworkRemove(ctx context.Context, ref string) error {
	return notFoundNet{ref}
}
func (f *fakeNetworks) NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error {
	f.connected = req
	return nil
}
func (f *fakeNetworks) NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error {
	return nil
}
func (f *fakeNetworks) NetworkPrune(ctx context.Context, fl Filters) (*network.PruneReport, error) {
	f.filters = fl
	return nil, nil
}

func TestNetworkRoutes(t *testing.T) {
	fb := &fakeNetworks{}
	ts := httptest.NewServer(New(Config{Networks: fb, Logger: quietLogger()}))
	defer ts.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/v1.51/networks", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("list: %d %s", code, body)
	}
	code, body := do("POST", "/v1.51/networks/create", `{"Name":"front","Internal":true,"IPAM":{"Config":[{"Subnet":"10.9.0.0/24"}]}}`)
	if code != 201 || fb.created.Name != "front" || !fb.created.Internal || fb.created.IPAM.Config[0].Subnet.String() != "10.9.0.0/24" {
		t.Errorf("create: %d %s %+v", code, body, fb.created)
	}
	if code, body := do("POST", "/v1.51/networks/create", ""); code != 400 {
		t.Errorf("create without a body: %d %s", code, body)
	}
	code, body = do("GET", "/v1.51/networks/nope", "")
	if code != 404 || errorMessage(t, body) != "network nope not found" {
		t.Errorf("inspect missing: %d %s", code, body)
	}
	code, body = do("GET", "/v1.51/networks/front", "")
	var n network.Inspect
	if code != 200 || json.Unmarshal([]byte(body), &n) != nil || n.ID != "abc" {
		t.Errorf("inspect: %d %s", code, body)
	}
	if code, body := do("DELETE", "/v1.51/networks/nope", ""); code != 404 {
		t.Errorf("remove missing: %d %s", code, body)
	}
	code, body = do("POST", "/v1.51/networks/front/connect", `{"Container":"web","EndpointConfig":{"Aliases":["www"]}}`)
	if code != 200 || fb.connected.Container != "web" || fb.connected.EndpointConfig.Aliases[0] != "www" {
		t.Errorf("connect: %d %s %+v", code, body, fb.connected)
	}
	if code, body := do("POST", "/v1.51/networks/front/connect", `{}`); code != 400 {
		t.Errorf("connect without a container: %d %s", code, body)
	}
	code, body = do("POST", "/v1.51/networks/prune?filters="+url.QueryEscape(`{"label":{"a=b":true}}`), "")
	if code != 200 || strings.TrimSpace(body) != `{"NetworksDeleted":[]}` || fb.filters["label"][0] != "a=b" {
		t.Errorf("prune: %d %s %v", code, body, fb.filters)
	}
}

func TestNetworksUnavailable(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	resp, body := ts.do(t, "GET", "/v1.51/networks", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || errorMessage(t, body) != "the network service is not available" {
		t.Errorf("networks without a backend: %d %s", resp.StatusCode, body)
	}
}
