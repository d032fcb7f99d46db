//go:build linux

package main

// `make bench`, registry part: a 5-layer image of random data (about 200
// MB, so it does not compress) in a loopback docker-registry, pulled by
// Berth and by Debian's dockerd alternately with a fresh store each run,
// then pushed by each to a fresh registry each run. Prints medians,
// ratios and MB/s against the disk's raw write speed; asserts nothing
// about speed.

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	benchRegRuns   = 5
	benchLayers    = 5
	benchLayerSize = 40 << 20
)

// diskWriteMBps measures sequential write speed into dir: 512 MiB written
// and fsynced, as dd conv=fsync does.
func diskWriteMBps(b *testing.B, dir string) float64 {
	b.Helper()
	f, err := os.CreateTemp(dir, "ddtest-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	const total = 512
	start := time.Now()
	for range total {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return total / time.Since(start).Seconds()
}

// BenchmarkRegistryVsDockerd is the registry part of `make bench`.
func BenchmarkRegistryVsDockerd(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	if why := haveDockerd(); why != "" {
		b.Skip("the benchmark's peer is Debian's dockerd: " + why)
	}
	needRegistry(b)
	src := startRegistry(b, registryOptions{})
	img := empty.Image
	var err error
	for range benchLayers {
		l, err := random.Layer(benchLayerSize, types.DockerLayer)
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			b.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		b.Fatal(err)
	}
	img = mutate.MediaType(img, types.DockerManifestSchema2)
	img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	ref := src.host + "/bench/big:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	var total int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		total += n
	}
	mb := float64(total) / (1 << 20)

	berth, err := startEngine(filepath.Join(workDir, "bench-reg-berth"))
	if err != nil {
		b.Fatal(err)
	}
	defer berth.cleanup()
	defer func() { _ = berth.stop() }()
	peer, err := startDockerd(filepath.Join(workDir, "bench-reg-dockerd"))
	if err != nil {
		b.Fatal(err)
	}
	defer peer.cleanup()
	defer func() { _ = peer.stop() }()
	engines := []*engine{berth, peer}
	disk := diskWriteMBps(b, workDir)

	for i := 0; i < b.N; i++ {
		pulls := map[*engine][]time.Duration{}
		pushes := map[*engine][]time.Duration{}
		for run := range benchRegRuns {
			for _, e := range engines {
				// A fresh store: the image and its layers are gone.
				pulls[e] = append(pulls[e], e.timed(b, "pull", "-q", ref))
				if run < benchRegRuns-1 {
					e.timed(b, "rmi", ref)
				}
			}
		}
		for range benchRegRuns {
			for _, e := range engines {
				dst := startRegistry(b, registryOptions{})
				target := dst.host + "/bench/pushed:v1"
				e.timed(b, "tag", ref, target)
				pushes[e] = append(pushes[e], e.timed(b, "push", "-q", target))
				e.timed(b, "rmi", target)
			}
		}
		pb, pd := median(pulls[berth]), median(pulls[peer])
		ub, ud := median(pushes[berth]), median(pushes[peer])
		fmt.Printf("registry: image of %d layers, %.0f MB of random data; disk raw write %.0f MB/s\n", benchLayers, mb, disk)
		fmt.Printf("  pull  berth %s (%.0f MB/s)  dockerd %s (%.0f MB/s)  ratio %.2fx (target <= 0.6x)\n",
			ms(pb), mb/pb.Seconds(), ms(pd), mb/pd.Seconds(), pb.Seconds()/pd.Seconds())
		fmt.Printf("  push  berth %s (%.0f MB/s)  dockerd %s (%.0f MB/s)  ratio %.2fx (target <= 0.8x)\n",
			ms(ub), mb/ub.Seconds(), ms(ud), mb/ud.Seconds(), ub.Seconds()/ud.Seconds())
		b.ReportMetric(pb.Seconds()/pd.Seconds(), "pull-ratio")
		b.ReportMetric(ub.Seconds()/ud.Seconds(), "push-ratio")
	}
}
