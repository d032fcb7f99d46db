package seccomp

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoad measures installing the default profile, which the kernel
// also evaluates for every syscall number to fill its allow cache. Each
// load happens on a throwaway thread.
func BenchmarkLoad(b *testing.B) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		b.Skip("profile compiles for amd64 and arm64 only")
	}
	prog, err := Compile(Default(dockerCaps, runtime.GOARCH), runtime.GOARCH)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(prog)), "insns")
	for i := 0; i < b.N; i++ {
		done := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				done <- err
				return
			}
			done <- Load(prog)
		}()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	p := Default(dockerCaps, "amd64")
	for i := 0; i < b.N; i++ {
		if _, err := Compile(p, "amd64"); err != nil {
			b.Fatal(err)
		}
	}
}
