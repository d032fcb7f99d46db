package api

import (
	"net/http"
	"net/url"
	"testing"
)

func TestNetworkPrune(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	resp, body := ts.do(t, "POST", "/v1.51/networks/prune", "", "")
	if resp.StatusCode != http.StatusOK || body != `{"NetworksDeleted":[]}`+"\n" {
		t.Errorf("prune: %d %q", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "POST", "/v1.51/networks/prune?filters="+url.QueryEscape(`{"label":{"a=b":true},"until":{"1h":true}}`), "", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("prune with label and until: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "POST", "/v1.51/networks/prune?filters="+url.QueryEscape(`{"driver":{"bridge":true}}`), "", "")
	if resp.StatusCode != http.StatusBadRequest || errorMessage(t, body) != "invalid filter 'driver'" {
		t.Errorf("prune with a filter prune does not take: %d %s", resp.StatusCode, body)
	}
	// Prune can answer truthfully only while no user-defined network can
	// be made: create must still say it is not served.
	if resp, body = ts.do(t, "POST", "/v1.51/networks/create", "application/json", `{"Name":"n"}`); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("network create: %d %s", resp.StatusCode, body)
	}
}
