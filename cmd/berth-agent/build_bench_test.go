//go:build linux

package main

// BenchmarkBuildVsDockerd: the same 10-step Dockerfile (a COPY of 2,000
// small files and several RUN steps) built by Berth and by Debian's
// dockerd with its classic builder, in the same run, alternating: a cold
// build (--no-cache), a rebuild after one of the files changed, and a
// rebuild with nothing changed. It prints medians and ratios; it asserts
// nothing about speed.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	benchBuildFiles  = 2000
	benchBuildRounds = 3
)

const benchDockerfile = `FROM %s
ENV APP=/app
WORKDIR /app
COPY files/ /app/files/
RUN ls /app/files | wc -l > /count.txt
RUN echo step > /step.txt
COPY main.txt /app/main.txt
RUN cat /app/main.txt > /app/main.copy
LABEL bench=yes
CMD ["cat", "/count.txt"]
`

// timedBuild runs docker build (classic builder, no network) against e.
func (e *engine) timedBuild(b *testing.B, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"build", "-q", "--network", "none"}, args...)...)
	cmd.Env = append(e.env(), "DOCKER_BUILDKIT=0")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("docker build %s against %s: %v\n%s\n%s", strings.Join(args, " "), e.name(), err, out, e.logTail(0, 30))
	}
	return d
}

func BenchmarkBuildVsDockerd(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	if why := haveDockerd(); why != "" {
		b.Skip("the benchmark's peer is Debian's dockerd: " + why)
	}
	berth, err := startEngine(filepath.Join(workDir, "bench-build-berth"))
	if err != nil {
		b.Fatal(err)
	}
	defer berth.cleanup()
	defer func() { _ = berth.stop() }()
	peer, err := startDockerd(filepath.Join(workDir, "bench-build-dockerd"))
	if err != nil {
		b.Fatal(err)
	}
	defer peer.cleanup()
	defer func() { _ = peer.stop() }()
	engines := []*engine{berth, peer}

	dir := b.TempDir()
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchBuildFiles; i++ {
		if err := os.WriteFile(filepath.Join(files, fmt.Sprintf("f%04d.txt", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "main.txt"), []byte("main\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf(benchDockerfile, testImage)), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, e := range engines {
		e.timed(b, "load", "-q", "-i", imageTar)
		// One unmeasured build each warms caches.
		e.timedBuild(b, "-t", "bench-build", dir)
	}

	change := 0
	for i := 0; i < b.N; i++ {
		cold, one, none := map[*engine][]time.Duration{}, map[*engine][]time.Duration{}, map[*engine][]time.Duration{}
		for r := 0; r < benchBuildRounds; r++ {
			for _, e := range engines {
				cold[e] = append(cold[e], e.timedBuild(b, "--no-cache", "-t", "bench-build", dir))
			}
			change++
			if err := os.WriteFile(filepath.Join(files, "f0042.txt"), []byte(fmt.Sprintf("changed %d\n", change)), 0o644); err != nil {
				b.Fatal(err)
			}
			for _, e := range engines {
				one[e] = append(one[e], e.timedBuild(b, "-t", "bench-build", dir))
			}
			for _, e := range engines {
				none[e] = append(none[e], e.timedBuild(b, "-t", "bench-build", dir))
			}
		}
		fmt.Fprintf(os.Stdout, "\n`docker build` of a 10-step Dockerfile (COPY of %d files, 3 RUN), classic builder, %d rounds, alternating:\n", benchBuildFiles, benchBuildRounds)
		for _, c := range []struct {
			name   string
			m      map[*engine][]time.Duration
			target string
			metric string
		}{
			{"cold (--no-cache)", cold, "0.70", "cold"},
			{"one file changed", one, "0.50", "changed"},
			{"nothing changed", none, "0.30", "nochange"},
		} {
			bb, bd := median(c.m[berth]), median(c.m[peer])
			fmt.Fprintf(os.Stdout, "  %-18s berth %s  dockerd %s  ratio %.2f (target at most %s)\n", c.name, ms(bb), ms(bd), float64(bb)/float64(bd), c.target)
			b.ReportMetric(float64(bb)/float64(bd), c.metric+"-ratio")
		}
	}
}
