//go:build linux

package builder

import (
	"io"
	"io/fs"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"strings"
)

// FuzzDockerfile runs Dockerfile text and a build argument through the
// front end: parse, stage planning, and the expansion of every command.
func FuzzDockerfile(f *testing.F) {
	f.Add("FROM busybox\nRUN echo $A\n", "A", "1")
	f.Add("ARG B=x\nFROM ${B:-busybox} AS s\nENV X=${B:+y} Y=\"$X\"\nCOPY --from=s a* /b/\n", "B", "img")
	f.Add("# escape=`\nFROM a\nLABEL k=`$v\nONBUILD RUN x\nHEALTHCHECK --interval=1s CMD true\n", "v", "")
	f.Add("FROM a\nRUN <<EOF\necho hi\nEOF\n", "", "")
	f.Fuzz(func(t *testing.T, df, argName, argValue string) {
		opts := Options{BuildArgs: map[string]*string{argName: &argValue}}
		p, err := parseDockerfile([]byte(df), opts)
		if err != nil {
			return
		}
		for _, i := range p.needed {
			st := &stageState{args: &envList{}}
			st.args.set(argName, argValue)
			env := st.env()
			for _, cmd := range p.stages[i].Commands {
				if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
					_ = ex.Expand(func(w string) (string, error) { return expandWord(p.escape, w, env) })
				}
				_ = cmdText(cmd)
			}
		}
	})
}

// FuzzDockerignore reads .dockerignore text and matches a path with it.
func FuzzDockerignore(f *testing.F) {
	f.Add("*.log\n!keep.log\n**/tmp\n# comment\n", "a/b/keep.log")
	f.Add("[a-\n", "x")
	f.Fuzz(func(t *testing.T, ignore, p string) {
		patterns, err := ignorefile.ReadAll(strings.NewReader(ignore))
		if err != nil {
			return
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return
		}
		_, _ = pm.MatchesOrParentMatches(p)
	})
}

// FuzzContext reads a build context tar and walks it: every path the
// tree answers stays inside it.
func FuzzContext(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := readContext(t.TempDir(), strings.NewReader(string(data)))
		if err != nil {
			return
		}
		defer m.Close()
		_ = fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if !fs.ValidPath(p) {
				t.Fatalf("walk yields %q", p)
			}
			if f, err := m.Open(p); err == nil {
				_, _ = io.Copy(io.Discard, f)
				f.Close()
			}
			return nil
		})
	})
}
