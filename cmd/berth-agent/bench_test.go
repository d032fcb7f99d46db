//go:build linux

package main

// `make bench`: Berth's engine against Debian's dockerd, both started here
// on their own roots and driven by the same docker CLI with the same image,
// alternating, with --network none on both (dockerd runs without a bridge
// here; see peerFlags). It prints medians and ratios; it asserts nothing
// about speed.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	benchRuns       = 30  // docker run --rm IMAGE true, per engine
	benchContainers = 200 // containers created before timing docker ps -a
	benchPsRuns     = 9   // docker ps -a, per engine
)

// timed runs the docker CLI against e exactly as given and returns how long
// it took; a non-zero exit fails the benchmark.
func (e *engine) timed(b *testing.B, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = e.env()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("docker %s against %s: %v\n%s\n%s", strings.Join(args, " "), e.name(), err, out, e.logTail(0, 30))
	}
	return d
}

func (e *engine) name() string {
	if e.peer {
		return "dockerd"
	}
	return "berth"
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * ms}, 3 * ms},
		{[]time.Duration{5 * ms, 1 * ms, 3 * ms}, 3 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 2500 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// BenchmarkVsDockerd is `make bench`.
func BenchmarkVsDockerd(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	if why := haveDockerd(); why != "" {
		b.Skip("the benchmark's peer is Debian's dockerd: " + why)
	}
	berth, err := startEngine(filepath.Join(workDir, "bench-berth"))
	if err != nil {
		b.Fatal(err)
	}
	defer berth.cleanup()
	defer func() { _ = berth.stop() }()
	peer, err := startDockerd(filepath.Join(workDir, "bench-dockerd"))
	if err != nil {
		b.Fatal(err)
	}
	defer peer.cleanup()
	defer func() { _ = peer.stop() }()
	engines := []*engine{berth, peer}
	for _, e := range engines {
		e.timed(b, "load", "-q", "-i", imageTar)
		// One unmeasured run each warms caches (binary, image layer).
		e.timed(b, "run", "--rm", "--network", "none", testImage, "true")
	}

	for i := 0; i < b.N; i++ {
		runs := map[*engine][]time.Duration{}
		for n := 0; n < benchRuns; n++ {
			for _, e := range engines {
				runs[e] = append(runs[e], e.timed(b, "run", "--rm", "--network", "none", testImage, "true"))
			}
		}
		rb, rd := median(runs[berth]), median(runs[peer])

		for _, e := range engines {
			for n := 0; n < benchContainers; n++ {
				e.timed(b, "create", "--network", "none", testImage, "true")
			}
		}
		ps := map[*engine][]time.Duration{}
		for n := 0; n < benchPsRuns; n++ {
			for _, e := range engines {
				ps[e] = append(ps[e], e.timed(b, "ps", "-a"))
			}
		}
		pb, pd := median(ps[berth]), median(ps[peer])

		fmt.Fprintf(os.Stdout, "\n`docker run --rm --network none IMAGE true`, %d runs each, alternating:\n", benchRuns)
		fmt.Fprintf(os.Stdout, "  berth   median %s\n  dockerd median %s\n  ratio berth/dockerd %.2f (target at most 0.50)\n",
			ms(rb), ms(rd), float64(rb)/float64(rd))
		fmt.Fprintf(os.Stdout, "`docker ps -a` with %d containers, %d runs each, alternating:\n", benchContainers+0, benchPsRuns)
		fmt.Fprintf(os.Stdout, "  berth   median %s\n  dockerd median %s\n  ratio berth/dockerd %.2f\n\n",
			ms(pb), ms(pd), float64(pb)/float64(pd))
		b.ReportMetric(float64(rb.Microseconds())/1000, "berth-run-ms")
		b.ReportMetric(float64(rd.Microseconds())/1000, "dockerd-run-ms")
		b.ReportMetric(float64(rb)/float64(rd), "run-ratio")
		b.ReportMetric(float64(pb.Microseconds())/1000, "berth-ps-ms")
		b.ReportMetric(float64(pd.Microseconds())/1000, "dockerd-ps-ms")
		b.ReportMetric(float64(pb)/float64(pd), "ps-ratio")
	}
}
