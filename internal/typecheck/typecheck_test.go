package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for the command, so the tests can
// look at its real exit status and output.
func TestMain(m *testing.M) {
	if os.Getenv("TYPECHECK_TEST_RUN_COMMAND") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// command runs the command with args in this directory.
func command(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TYPECHECK_TEST_RUN_COMMAND=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), status
}

func mustCheck(t *testing.T, opts options) *result {
	t.Helper()
	res, err := check(opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A darwin file using cgo (C.int, C.CString, a preamble function) and a
// dependency that is a cgo package on darwin (fyne.io/systray) is clean.
func TestCgoDarwinFileIsClean(t *testing.T) {
	for _, arch := range []string{"arm64", "amd64"} {
		res := mustCheck(t, options{GOOS: "darwin", GOARCH: arch, Patterns: []string{"./testdata/cgook"}})
		if len(res.Errors) != 0 {
			t.Errorf("darwin/%s: want no errors, got:\n%s", arch, strings.Join(res.Errors, "\n"))
		}
		if len(res.Roots) != 1 || res.Checked < 50 {
			t.Errorf("darwin/%s: checked %d packages for roots %v: the dependencies (standard library, systray) were not all checked", arch, res.Checked, res.Roots)
		}
	}
}

// The files are the target platform's: the same package checked for linux
// has other_linux.go, whose error the darwin check never sees.
func TestFilesAreTheTargetPlatforms(t *testing.T) {
	res := mustCheck(t, options{GOOS: "linux", GOARCH: "amd64", Patterns: []string{"./testdata/cgook"}})
	want := filepath.Join("testdata", "cgook", "other_linux.go") + ":4:17: cannot use"
	if len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], want) {
		t.Errorf("linux: want one error %q..., got:\n%s", want, strings.Join(res.Errors, "\n"))
	}
}

// Real type errors in a darwin cgo file, including a misuse of a cgo
// dependency's API, are reported with file and line, and exit status 1.
func TestDarwinTypeErrorsAreReported(t *testing.T) {
	stdout, stderr, status := command(t, "-goos", "darwin", "-goarch", "arm64", "./testdata/bad")
	if status != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", status, stderr)
	}
	file := filepath.Join("testdata", "bad", "bad_darwin.go")
	want := []string{
		file + `:15:14: cannot use "not a number" (untyped string constant) as int value in variable declaration`,
		file + `:17:19: cannot use 42 (untyped int constant) as string value in argument to systray.SetTitle`,
		file + `:18:10: undefined: systray.NoSuchFunction`,
	}
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
	}
}

func TestCleanPackageExitsZero(t *testing.T) {
	stdout, stderr, status := command(t, "-goos", "darwin", "-goarch", "amd64", "./testdata/cgook")
	if status != 0 || stdout != "" {
		t.Errorf("exit status %d, want 0; stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if status := run(nil, &out, &errOut); status != 2 {
		t.Errorf("no pattern: exit status %d, want 2", status)
	}
	if status := run([]string{"-goarch", "nosucharch", "./testdata/cgook"}, &out, &errOut); status != 2 {
		t.Errorf("unknown GOARCH: exit status %d, want 2", status)
	}
}

// An //go:embed pattern matching nothing is not a type error (main.go's
// frontend/dist before the frontend is built), and the package's files are
// checked all the same.
func TestMissingEmbedIsIgnored(t *testing.T) {
	res := mustCheck(t, options{GOOS: "darwin", GOARCH: "arm64", Patterns: []string{"./testdata/embedmissing"}})
	want := filepath.Join("testdata", "embedmissing", "wrong_darwin.go") + ":4:20: cannot use 1"
	if len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], want) {
		t.Errorf("want only %q..., got:\n%s", want, strings.Join(res.Errors, "\n"))
	}
}

// The project itself type-checks for darwin: the app packages, the desktop
// app's main package (which embeds frontend/dist, absent in a fresh clone)
// and, once it exists, the vz driver with the real github.com/Code-Hex/vz/v3.
func TestProjectTypeChecksForDarwin(t *testing.T) {
	root := filepath.Join("..", "..")
	cases := []struct {
		name     string
		tags     string
		patterns []string
	}{
		{"app", "", []string{"./app/..."}},
		{"desktop", "desktop", []string{"."}},
	}
	if _, err := os.Stat(filepath.Join(root, "app", "machine", "vz")); err == nil {
		cases = append(cases, struct {
			name     string
			tags     string
			patterns []string
		}{"vz", "", []string{"./app/machine/vz/..."}})
	}
	for _, c := range cases {
		for _, arch := range []string{"arm64", "amd64"} {
			t.Run(c.name+"/"+arch, func(t *testing.T) {
				res := mustCheck(t, options{GOOS: "darwin", GOARCH: arch, Tags: c.tags, Dir: root, Patterns: c.patterns})
				if len(res.Errors) != 0 {
					t.Errorf("darwin/%s -tags=%q %v:\n%s", arch, c.tags, c.patterns, strings.Join(res.Errors, "\n"))
				}
				if len(res.Roots) == 0 {
					t.Errorf("no package matched %v", c.patterns)
				}
			})
		}
	}
}
