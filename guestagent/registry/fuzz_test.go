package registry

import (
	"encoding/json"
	"testing"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if m.SchemaVersion != 2 || m.Config.Digest.Validate() != nil {
			t.Fatalf("accepted a bad manifest: %+v", m)
		}
		for _, l := range m.Layers {
			if l.Digest.Validate() != nil || l.Size < 0 {
				t.Fatalf("accepted a bad layer: %+v", l)
			}
		}
	})
}

func FuzzChoosePlatform(f *testing.F) {
	ix := ocispec.Index{Manifests: []ocispec.Descriptor{
		{Digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}}
	ix.SchemaVersion = 2
	b, _ := json.Marshal(ix)
	f.Add(b, "linux", "arm64", "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{}]}`), "linux", "amd64", "")
	f.Fuzz(func(t *testing.T, b []byte, os, arch, variant string) {
		d, err := ChoosePlatform(b, Platform{OS: os, Architecture: arch, Variant: variant})
		if err != nil {
			return
		}
		if d.Platform == nil || d.Platform.OS != os || d.Platform.Architecture != arch {
			t.Fatalf("chose %+v for %s/%s", d.Platform, os, arch)
		}
	})
}

func FuzzReference(f *testing.F) {
	for _, s := range []string{"busybox", "localhost:5000/a/b:v1", "a@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "UPPER", "a:b:c", "docker.io/library/x"} {
		f.Add(s)
	}
	c, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			return
		}
		ref = reference.TagNameOnly(ref)
		// Every reference the API accepts converts to the protocol's.
		if _, err := c.ggcrRef(ref, c.endpoints(ref)[0]); err != nil {
			t.Fatalf("%q parses but does not convert: %v", s, err)
		}
	})
}
