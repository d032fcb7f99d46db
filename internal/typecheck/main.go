// Command typecheck type-checks Go packages for a platform this machine
// cannot build for, such as darwin: it owns the "does our macOS code still
// compile against the real APIs" check that `make check-darwin` runs on Linux.
//
//	go run ./internal/typecheck -goos darwin -goarch arm64 [-tags desktop] [-test] PATTERN...
//
// Building darwin code needs cgo and the Apple SDK (github.com/Code-Hex/vz/v3,
// github.com/wailsapp/wails/v2 and fyne.io/systray are cgo packages on
// darwin), so `GOOS=darwin go build` and `go vet` cannot run here. Instead
// the packages are listed with golang.org/x/tools/go/packages for the target
// platform (GOOS, GOARCH and CGO_ENABLED=1, so the cgo files are selected) in
// a mode that lists files but never asks the go command for compiled files,
// so no C compiler is ever run. Every package, standard library included, is
// then parsed from its original files (the ones holding `import "C"`) and
// type-checked bottom-up with go/types and Config.FakeImportC: references to
// C.xxx are accepted without being resolved, and anything derived from them
// has an invalid type, which go/types does not report again.
//
// Only the packages matched by the patterns are reported: dependencies are
// checked for their exported API only (function bodies are skipped) and their
// errors, mostly the fake "C" package's doing, are ignored. A real misuse in
// our code, a function of a dependency that does not exist or a wrong
// argument type, is reported as file:line:col and the exit status is 1.
// Exit status 2 means the packages could not be listed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it prints the errors to stdout and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("typecheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts options
	fs.StringVar(&opts.GOOS, "goos", "darwin", "target operating system")
	fs.StringVar(&opts.GOARCH, "goarch", "arm64", "target architecture")
	fs.StringVar(&opts.Tags, "tags", "", "comma-separated build tags")
	fs.BoolVar(&opts.Tests, "test", false, "also check the packages' test files")
	fs.StringVar(&opts.Dir, "C", "", "directory to resolve the patterns in (default: the current one)")
	verbose := fs.Bool("v", false, "print what was checked and how long it took")
	deps := fs.Bool("deps", false, "print the dependencies' errors too (to stderr; they do not count)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: typecheck [-goos GOOS] [-goarch GOARCH] [-tags TAGS] [-test] [-C DIR] [-v] PATTERN...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts.Patterns = fs.Args()
	if *deps {
		opts.DepErrors = stderr
	}
	if len(opts.Patterns) == 0 {
		fs.Usage()
		return 2
	}

	start := time.Now()
	res, err := check(opts)
	if err != nil {
		fmt.Fprintln(stderr, "typecheck:", err)
		return 2
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stdout, e)
	}
	if *verbose {
		fmt.Fprintf(stderr, "typecheck: %s/%s tags=%q %s: %d packages checked (%d reported), %d errors, %s\n",
			opts.GOOS, opts.GOARCH, opts.Tags, strings.Join(opts.Patterns, " "),
			res.Checked, len(res.Roots), len(res.Errors), time.Since(start).Round(time.Millisecond))
	}
	if len(res.Errors) > 0 {
		return 1
	}
	return 0
}
