package api

import (
	"net/url"
	"testing"
)

func TestBuildOptions(t *testing.T) {
	q := url.Values{
		"t":           {"a:1", "b"},
		"dockerfile":  {"sub/Dockerfile"},
		"buildargs":   {`{"X":"1","Y":null}`},
		"labels":      {`{"l":"v"}`},
		"nocache":     {"1"},
		"q":           {"true"},
		"target":      {"stage"},
		"networkmode": {"none"},
	}
	opts, err := buildOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Tags) != 2 || opts.Dockerfile != "sub/Dockerfile" || !opts.NoCache || !opts.Quiet || opts.Target != "stage" || opts.NetworkMode != "none" {
		t.Errorf("options %+v", opts)
	}
	if v := opts.BuildArgs["X"]; v == nil || *v != "1" {
		t.Errorf("build arg X = %v", v)
	}
	if v, ok := opts.BuildArgs["Y"]; !ok || v != nil {
		t.Errorf("build arg Y (no value) = %v, %v", v, ok)
	}
	if opts.Labels["l"] != "v" {
		t.Errorf("labels %v", opts.Labels)
	}
	for _, bad := range []url.Values{
		{"buildargs": {"{"}},
		{"labels": {"[1]"}},
		{"version": {"2"}},
		{"t": {""}},
	} {
		if _, err := buildOptions(bad); err == nil {
			t.Errorf("buildOptions(%v) accepted", bad)
		}
	}
}

// FuzzBuildOptions decodes arbitrary build query parameters.
func FuzzBuildOptions(f *testing.F) {
	f.Add(`{"A":"b"}`, `{"k":"v"}`, "t:1")
	f.Fuzz(func(t *testing.T, args, labels, tag string) {
		_, _ = buildOptions(url.Values{"buildargs": {args}, "labels": {labels}, "t": {tag}})
	})
}
