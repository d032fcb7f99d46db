package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// floorInitrd is the floor of the boot figures: the image's kernel with a
// busybox init that powers off at once.
func floorInitrd(b testing.TB, arch string) string {
	b.Helper()
	root := repoRoot(b)
	cache := filepath.Join(root, "build", "vm", "cache", arch)
	ctx := context.Background()
	pkg, err := fetchPackage(ctx, cache, "busybox-static", arch)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := extractPackage(ctx, filepath.Join(cache, pkg.File), dir); err != nil {
		b.Fatal(err)
	}
	a := NewArchive()
	for _, e := range []Entry{
		{Path: "bin/busybox", Mode: modeFile | 0o755, Source: filepath.Join(dir, "bin", "busybox")},
		{Path: "init", Mode: modeFile | 0o755, Data: []byte("#!/bin/busybox sh\n/bin/busybox poweroff -f\n")},
		{Path: "dev/console", Mode: modeCharDev | 0o600, DevMajor: 5, DevMinor: 1},
	} {
		if err := a.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := a.WriteTo(&buf, 0); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "floor.img")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func BenchmarkBootAmd64(b *testing.B) { benchBoot(b, "amd64") }
func BenchmarkBootArm64(b *testing.B) { benchBoot(b, "arm64") }

// benchBoot measures, alternating, QEMU start to the agent's ready line
// (data disk already made) and QEMU start to exit of the floor, and reports
// the medians and their ratio.
func benchBoot(b *testing.B, arch string) {
	requireBuildTools(b)
	requireQEMU(b, arch)
	out := buildImage(b, arch)
	initrd := testInitrd(b, arch, out)
	floor := floorInitrd(b, arch)
	kernel := filepath.Join(out, arch, "vmlinuz")
	disk := filepath.Join(b.TempDir(), "data.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<30); err != nil {
		b.Fatal(err)
	}
	params := fmt.Sprintf("berth.engine=/%s", standinPath)
	// A first boot makes the filesystem; it is not measured.
	v := bootVM(b, arch, kernel, initrd, disk, params)
	v.waitConsole(b, "berth: agent ready", 3*time.Minute)
	shutdown(b, v)

	var ready, engine, floors []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := bootVM(b, arch, kernel, floor, disk, "")
		f.waitExit(b, 3*time.Minute)
		floors = append(floors, time.Since(f.start))

		v := bootVM(b, arch, kernel, initrd, disk, params)
		ready = append(ready, v.waitConsole(b, "berth: agent ready", 3*time.Minute))
		shutdown(b, v)

		// The image as built, with the real engine.
		v = bootVM(b, arch, kernel, filepath.Join(out, arch, "initrd.img"), disk, "")
		engine = append(engine, v.waitConsole(b, "berth: agent ready", 3*time.Minute))
		shutdown(b, v)
	}
	b.StopTimer()
	r, e, f := median(ready), median(engine), median(floors)
	b.ReportMetric(float64(r.Milliseconds()), "standin-ready-ms")
	b.ReportMetric(float64(e.Milliseconds()), "engine-ready-ms")
	b.ReportMetric(float64(f.Milliseconds()), "floor-ms")
	b.ReportMetric(float64(r)/float64(f), "standin/floor")
	b.ReportMetric(float64(e)/float64(f), "engine/floor")
	b.Logf("%s medians of %d: ready with the stand-in engine %v, with the engine %v, floor %v; each: %v / %v / %v",
		arch, b.N, r, e, f, ready, engine, floors)
}

func shutdown(b testing.TB, v *vm) {
	l := dialLink(b, v.link)
	resp, err := l.client(1024).Post("http://guest/shutdown", "application/json", nil)
	if err != nil {
		b.Fatalf("POST /shutdown: %v", err)
	}
	resp.Body.Close()
	v.waitExit(b, time.Minute)
}
