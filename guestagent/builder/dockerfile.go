//go:build linux

package builder

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// maxDockerfileSize bounds the Dockerfile a build reads.
const maxDockerfileSize = 4 << 20

// plan is a parsed Dockerfile: its stages, the ARGs before the first FROM,
// and which stages the target needs, in order.
type plan struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	needed   []int
	target   int
	steps    int // how many steps the needed stages take
}

// predefinedArgs may be passed with --build-arg without an ARG.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// parseDockerfile parses data and chooses the stages to build.
func parseDockerfile(data []byte, opts Options) (*plan, error) {
	if len(data) > maxDockerfileSize {
		return nil, invalidParameter("the Dockerfile is larger than %d bytes", maxDockerfileSize)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, invalidParameter("failed to parse Dockerfile: %v", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, invalidParameter("failed to parse Dockerfile: %v", err)
	}
	if len(stages) == 0 {
		return nil, invalidParameter("the Dockerfile (Dockerfile) cannot be empty")
	}
	p := &plan{stages: stages, metaArgs: metaArgs, escape: res.EscapeToken, target: len(stages) - 1}
	if opts.Target != "" {
		i, ok := p.stageIndex(opts.Target)
		if !ok {
			return nil, invalidParameter("failed to reach build target %s in Dockerfile", opts.Target)
		}
		p.target = i
	}
	// Base names may use meta ARGs; expand them to find stage references.
	lex := shell.NewLex(p.escape)
	metaEnv := p.metaEnv(opts.BuildArgs)
	needed := map[int]bool{}
	var visit func(i int) error
	visiting := map[int]bool{}
	visit = func(i int) error {
		if needed[i] {
			return nil
		}
		if visiting[i] {
			return invalidParameter("circular dependency between build stages at %q", p.stages[i].Name)
		}
		visiting[i] = true
		base, _, err := lex.ProcessWord(p.stages[i].BaseName, metaEnv)
		if err != nil {
			return invalidParameter("failed to process %q: %v", p.stages[i].BaseName, err)
		}
		if j, ok := p.stageIndex(base); ok && j < i {
			if err := visit(j); err != nil {
				return err
			}
		}
		for _, cmd := range p.stages[i].Commands {
			if c, ok := cmd.(*instructions.CopyCommand); ok && c.From != "" {
				if j, ok := p.stageIndex(c.From); ok && j < i {
					if err := visit(j); err != nil {
						return err
					}
				}
			}
		}
		needed[i] = true
		return nil
	}
	if err := visit(p.target); err != nil {
		return nil, err
	}
	for i := range p.stages {
		if needed[i] {
			p.needed = append(p.needed, i)
			p.steps += 1 + len(p.stages[i].Commands)
		}
	}
	return p, nil
}

// stageIndex finds a stage by name (case-insensitive) or number.
func (p *plan) stageIndex(name string) (int, bool) {
	for i, s := range p.stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(p.stages) {
		return n, true
	}
	return 0, false
}

// metaEnv is the environment of FROM lines: the ARGs before the first
// FROM with their build-arg values or defaults.
func (p *plan) metaEnv(buildArgs map[string]*string) *envList {
	env := &envList{}
	for _, a := range p.metaArgs {
		for _, kv := range a.Args {
			if v, ok := buildArgs[kv.Key]; ok && v != nil {
				env.set(kv.Key, *v)
				continue
			}
			if kv.Value != nil {
				lex := shell.NewLex(p.escape)
				val, _, err := lex.ProcessWord(*kv.Value, env)
				if err == nil {
					env.set(kv.Key, val)
				}
			}
		}
	}
	return env
}

// envList is an ordered KEY=value list that implements shell.EnvGetter.
type envList struct {
	kv []string
}

func (e *envList) Get(key string) (string, bool) {
	for i := len(e.kv) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(e.kv[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

func (e *envList) Keys() []string {
	var keys []string
	seen := map[string]bool{}
	for _, kv := range e.kv {
		k, _, _ := strings.Cut(kv, "=")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func (e *envList) set(key, value string) {
	for i, kv := range e.kv {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			e.kv[i] = key + "=" + value
			return
		}
	}
	e.kv = append(e.kv, key+"="+value)
}

// expandWord expands one word with Docker's rules (${a:-b}, ${a:+b},
// escapes).
func expandWord(escape rune, word string, env shell.EnvGetter) (string, error) {
	lex := shell.NewLex(escape)
	out, _, err := lex.ProcessWord(word, env)
	if err != nil {
		return "", fmt.Errorf("failed to process %q: %w", word, err)
	}
	return out, nil
}
