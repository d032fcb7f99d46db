//go:build linux

package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// stageState is where a stage's build stands: its current image and
// config.
type stageState struct {
	imageID string
	cfg     dockerspec.DockerOCIImageConfig
	author  string
	args    *envList // the ARGs declared so far, with their values
	cmdSet  bool     // CMD given in this stage (ENTRYPOINT then keeps it)
}

// buildRun is one build in progress.
type buildRun struct {
	b           *Builder
	opts        Options
	st          *stream
	ctxRoot     srcFS
	plan        *plan
	ctx         context.Context
	stageImages map[int]*stageState
	step        int
	checksum    string // ADD --checksum of the step running
	declared    map[string]bool
}

func (r *buildRun) execute() (string, error) {
	r.declared = map[string]bool{}
	for _, a := range r.plan.metaArgs {
		for _, kv := range a.Args {
			r.declared[kv.Key] = true
		}
	}
	if len(r.opts.Labels) > 0 {
		t := &r.plan.stages[r.plan.target]
		for _, k := range sortedKeys(r.opts.Labels) {
			t.Commands = append(t.Commands, instructions.NewLabelCommand(k, r.opts.Labels[k], true))
			r.plan.steps++
		}
	}
	for _, i := range r.plan.needed {
		s, err := r.buildStage(i)
		if err != nil {
			return "", err
		}
		r.stageImages[i] = s
	}
	id := r.stageImages[r.plan.target].imageID
	if id == "" {
		return "", invalidParameter("No image was generated. Is your Dockerfile empty?")
	}
	return id, nil
}

func (r *buildRun) unusedArgs() []string {
	var out []string
	for _, k := range sortedKeys(r.opts.BuildArgs) {
		if !r.declared[k] && !predefinedArgs[k] {
			out = append(out, k)
		}
	}
	return out
}

func (r *buildRun) stepLine(text string) {
	r.step++
	r.st.printf("Step %d/%d : %s\n", r.step, r.plan.steps, text)
}

// baseImage resolves a FROM image, pulling it when asked or missing.
func (r *buildRun) baseImage(name string) (string, *dockerspec.DockerOCIImage, error) {
	pull := r.b.cfg.Pull
	if r.opts.Pull && pull != nil {
		if err := pull(r.ctx, name, r.st.raw); err != nil {
			return "", nil, err
		}
	}
	id, cfg, err := r.b.cfg.Backend.BuildImage(name)
	if err != nil && pull != nil && !r.opts.Pull {
		if perr := pull(r.ctx, name, r.st.raw); perr != nil {
			return "", nil, perr
		}
		id, cfg, err = r.b.cfg.Backend.BuildImage(name)
	}
	return id, cfg, err
}

func (r *buildRun) buildStage(i int) (*stageState, error) {
	stage := r.plan.stages[i]
	r.stepLine(stage.SourceCode)
	base, err := expandWord(r.plan.escape, stage.BaseName, r.plan.metaEnv(r.opts.BuildArgs))
	if err != nil {
		return nil, invalidParameter("%v", err)
	}
	s := &stageState{args: &envList{}}
	if j, ok := r.plan.stageIndex(base); ok && j < i {
		prev := r.stageImages[j]
		s.imageID, s.cfg = prev.imageID, copyConfig(prev.cfg)
	} else if strings.EqualFold(base, "scratch") {
		s.imageID = "" // the empty image; the first commit starts it
	} else {
		id, cfg, err := r.baseImage(base)
		if err != nil {
			return nil, err
		}
		s.imageID, s.cfg = id, copyConfig(cfg.Config)
	}
	if s.imageID != "" {
		r.st.printf(" ---> %s\n", shortID(s.imageID))
	}
	if triggers := s.cfg.OnBuild; len(triggers) > 0 {
		s.cfg.OnBuild = nil
		r.st.printf("# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			r.st.printf("s")
		}
		r.st.printf("\n")
		for _, t := range triggers {
			cmd, err := parseTrigger(t)
			if err != nil {
				return nil, err
			}
			r.st.printf(" ---> %s\n", strings.TrimSpace(t))
			if err := r.dispatch(s, cmd); err != nil {
				return nil, err
			}
		}
	}
	for _, cmd := range stage.Commands {
		r.stepLine(cmdText(cmd))
		if err := r.dispatch(s, cmd); err != nil {
			return nil, err
		}
		r.st.printf(" ---> %s\n", shortID(s.imageID))
	}
	return s, nil
}

// parseTrigger parses one ONBUILD trigger.
func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil || len(res.AST.Children) != 1 {
		return nil, invalidParameter("invalid ONBUILD trigger %q", t)
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, invalidParameter("invalid ONBUILD trigger %q: %v", t, err)
	}
	switch cmd.(type) {
	case *instructions.OnbuildCommand:
		return nil, invalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
	}
	return cmd, nil
}

// env is the environment words of a step expand in: the stage's ARGs,
// overridden by its ENV.
func (s *stageState) env() *envList {
	e := &envList{kv: append([]string(nil), s.args.kv...)}
	for _, kv := range s.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.set(k, v)
	}
	return e
}

// argEnv is the ARGs a RUN sees as environment (those ENV does not set).
func (s *stageState) argEnv() []string {
	var out []string
	for _, kv := range s.args.kv {
		k, _, _ := strings.Cut(kv, "=")
		set := false
		for _, e := range s.cfg.Env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				set = true
			}
		}
		if !set {
			out = append(out, kv)
		}
	}
	return out
}

func (r *buildRun) dispatch(s *stageState, cmd instructions.Command) error {
	env := s.env()
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isRun := cmd.(*instructions.RunCommand); !isRun {
			if err := ex.Expand(func(w string) (string, error) { return expandWord(r.plan.escape, w, env) }); err != nil {
				return invalidParameter("%v", err)
			}
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc content keeps its quotes and escapes; only variables expand.
		lex := shell.NewLex(r.plan.escape)
		lex.RawQuotes, lex.RawEscapes = true, true
		if err := ex.ExpandRaw(func(w string) (string, error) {
			out, _, err := lex.ProcessWord(w, env)
			return out, err
		}); err != nil {
			return invalidParameter("%v", err)
		}
	}
	cfg := copyConfig(s.cfg)
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return r.run(s, c)
	case *instructions.CopyCommand:
		if len(c.ExcludePatterns) > 0 {
			return notImplemented("COPY --exclude is not supported yet")
		}
		if c.Parents {
			return notImplemented("COPY --parents is not supported yet")
		}
		return r.copy(s, c.SourcesAndDest, c.From, c.Chown, c.Chmod, false, c.String())
	case *instructions.AddCommand:
		if len(c.ExcludePatterns) > 0 {
			return notImplemented("ADD --exclude is not supported yet")
		}
		if c.KeepGitDir != nil {
			return notImplemented("ADD of git repositories is not supported yet")
		}
		if c.Unpack != nil {
			return notImplemented("ADD --unpack is not supported yet")
		}
		r.checksum = c.Checksum
		defer func() { r.checksum = "" }()
		return r.copy(s, c.SourcesAndDest, "", c.Chown, c.Chmod, true, c.String())
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		s.author = c.Maintainer
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			wd := cfg.WorkingDir
			if wd == "" {
				wd = "/"
			}
			p = path.Join(wd, p)
		}
		cfg.WorkingDir = path.Clean(p)
		return r.workdir(s, cfg, cmdText(cmd))
	case *instructions.CmdCommand:
		cfg.Cmd = s.commandLine(c.ShellDependantCmdLine)
		s.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = s.commandLine(c.ShellDependantCmdLine)
		if !s.cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			w, err := expandWord(r.plan.escape, p, env)
			if err != nil {
				return invalidParameter("%v", err)
			}
			ports, err := exposedPorts(w)
			if err != nil {
				return err
			}
			for _, port := range ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return invalidParameter("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			r.declared[kv.Key] = true
			if v, ok := r.opts.BuildArgs[kv.Key]; ok && v != nil {
				s.args.set(kv.Key, *v)
				continue
			}
			if kv.Value != nil {
				s.args.set(kv.Key, *kv.Value) // expanded by Expand above
				continue
			}
			if v, ok := r.plan.metaEnv(r.opts.BuildArgs).Get(kv.Key); ok {
				s.args.set(kv.Key, v)
			}
		}
	default:
		return notImplemented("the %s instruction is not supported yet", strings.ToUpper(cmd.Name()))
	}
	return r.commitConfig(s, cfg, cmdText(cmd))
}

// commitConfig makes the config-only image of a step (or takes it from
// the cache).
func (r *buildRun) commitConfig(s *stageState, cfg dockerspec.DockerOCIImageConfig, text string) error {
	createdBy := "/bin/sh -c #(nop)  " + text
	cj, _ := json.Marshal(cfg)
	key := stepKey(s.imageID, createdBy+"\x00"+s.author+"\x00"+string(cj), s.argEnv(), "")
	if id, ok := r.cached(key); ok {
		s.imageID, s.cfg = id, cfg
		return nil
	}
	id, err := r.b.cfg.Backend.BuildCommit(r.ctx, s.imageID, CommitRequest{Config: cfg, CreatedBy: createdBy, Author: s.author})
	if err != nil {
		return err
	}
	r.remember(key, id)
	s.imageID, s.cfg = id, cfg
	return nil
}

// workdir commits a WORKDIR step: the directory is made in the image
// when it does not exist there yet (owned by root, mode 0755).
func (r *buildRun) workdir(s *stageState, cfg dockerspec.DockerOCIImageConfig, text string) error {
	createdBy := "/bin/sh -c #(nop) " + text
	cj, _ := json.Marshal(cfg)
	key := stepKey(s.imageID, "WORKDIR\x00"+createdBy+"\x00"+s.author+"\x00"+string(cj), nil, "")
	if id, ok := r.cached(key); ok {
		s.imageID, s.cfg = id, cfg
		return nil
	}
	exists := false
	if s.imageID != "" {
		var err error
		if _, exists, err = r.stat(s.imageID, cfg.WorkingDir); err != nil {
			return err
		}
	}
	commit := CommitRequest{Config: cfg, CreatedBy: createdBy, Author: s.author}
	var id string
	var err error
	if exists || cfg.WorkingDir == "/" {
		id, err = r.b.cfg.Backend.BuildCommit(r.ctx, s.imageID, commit)
	} else {
		entries := []copyEntry{{name: strings.TrimPrefix(cfg.WorkingDir, "/"), hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now(), Format: tar.FormatPAX}}}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeEntries(entries, pw)) }()
		id, err = r.b.cfg.Backend.BuildAddFiles(r.ctx, s.imageID, pr, commit)
		pr.CloseWithError(errors.New("build step ended"))
	}
	if err != nil {
		return err
	}
	r.remember(key, id)
	s.imageID, s.cfg = id, cfg
	return nil
}

// Stater is an optional Backend that looks paths up in an image: WORKDIR
// makes its directory only when missing, and a COPY of one file to a
// destination that is a directory in the image lands inside it.
type Stater interface {
	BuildStat(ctx context.Context, imageID, path string) (mode fs.FileMode, exists bool, err error)
}

func (r *buildRun) stat(imageID, p string) (fs.FileMode, bool, error) {
	st, ok := r.b.cfg.Backend.(Stater)
	if !ok || imageID == "" {
		return 0, false, nil
	}
	return st.BuildStat(r.ctx, imageID, p)
}

// cached looks key up, unless the build asked for no cache; a hit whose
// image is gone is dropped.
func (r *buildRun) cached(key string) (string, bool) {
	if r.opts.NoCache {
		return "", false
	}
	id, ok := r.b.cache.get(key)
	if !ok {
		return "", false
	}
	if _, _, err := r.b.cfg.Backend.BuildImage(id); err != nil {
		_ = r.b.cache.delete(key)
		return "", false
	}
	r.st.printf(" ---> Using cache\n")
	return id, true
}

func (r *buildRun) remember(key, id string) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if err := r.b.cache.put(key, id); err != nil {
		r.b.cfg.Logger.Warn("recording a build step in the cache", "err", err)
	}
}

// runCommandLine is commandLine with heredocs: a RUN that is only a
// heredoc runs its content as the script; otherwise the heredocs follow
// the command line and the shell feeds them to it.
func (s *stageState) runCommandLine(c instructions.ShellDependantCmdLine) ([]string, error) {
	if len(c.Files) == 0 {
		return s.commandLine(c), nil
	}
	if !c.PrependShell {
		return nil, invalidParameter("heredocs need the shell form of RUN")
	}
	sh := s.cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	line := strings.TrimSpace(strings.Join(c.CmdLine, " "))
	if len(c.Files) == 1 && strings.HasPrefix(line, "<<") && !strings.ContainsAny(strings.Trim(line[2:], "-\"'"), " \t|;&<>") {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		return append(append([]string(nil), sh...), data), nil
	}
	var b strings.Builder
	b.WriteString(line)
	for _, f := range c.Files {
		b.WriteString("\n")
		b.WriteString(f.Data)
		b.WriteString(f.Name)
	}
	return append(append([]string(nil), sh...), b.String()), nil
}

// commandLine is the argv of a RUN, CMD or ENTRYPOINT: the shell form
// runs under the stage's SHELL.
func (s *stageState) commandLine(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	sh := s.cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), sh...), strings.Join(c.CmdLine, " "))
}

func (r *buildRun) run(s *stageState, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return notImplemented("RUN --%s is not supported yet", c.FlagsUsed[0])
	}
	cmd, err := s.runCommandLine(c.ShellDependantCmdLine)
	if err != nil {
		return err
	}
	args := s.argEnv()
	createdBy := strings.Join(cmd, " ")
	if len(args) > 0 {
		createdBy = "|" + strconv.Itoa(len(args)) + " " + strings.Join(args, " ") + " " + createdBy
	}
	key := stepKey(s.imageID, "RUN\x00"+strings.Join(cmd, "\x00")+"\x00"+r.opts.NetworkMode, args, "")
	if id, ok := r.cached(key); ok {
		s.imageID = id
		return nil
	}
	var ctrID string
	id, code, err := r.b.cfg.Backend.BuildRun(r.ctx, RunRequest{
		Parent:     s.imageID,
		Cmd:        cmd,
		Env:        append(append([]string(nil), s.cfg.Env...), args...),
		User:       s.cfg.User,
		WorkingDir: s.cfg.WorkingDir,
		Network:    r.opts.NetworkMode,
		Output:     r.st,
		Started: func(id string) {
			ctrID = id
			r.st.printf(" ---> Running in %s\n", shortID(id))
		},
		Commit: CommitRequest{Config: s.cfg, CreatedBy: createdBy, Author: s.author},
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return &StepError{Message: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(cmd, " "), code), Code: code}
	}
	if ctrID != "" {
		r.st.printf("Removing intermediate container %s\n", shortID(ctrID))
	}
	r.remember(key, id)
	s.imageID = id
	return nil
}

// copy runs COPY (add=false) or ADD.
func (r *buildRun) copy(s *stageState, sd instructions.SourcesAndDest, from, chown, chmod string, add bool, text string) error {
	verb := "COPY"
	if add {
		verb = "ADD"
	}
	owner, err := parseChown(chown, func(p string) ([]byte, error) { return r.readImageFile(s.imageID, p) })
	if err != nil {
		return err
	}
	var mode *fs.FileMode
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return invalidParameter("invalid chmod parameter: %q", chmod)
		}
		fm := fs.FileMode(m)
		mode = &fm
	}
	var srcRoot srcFS = r.ctxRoot
	var cleanup []func()
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	if from != "" {
		root, done, err := r.fromRoot(from, sd.SourcePaths)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, done)
		srcRoot = root
	}
	dest := sd.DestPath
	wd := s.cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join(wd, dest)
	}
	dest = path.Clean(dest)
	if len(sd.SourcePaths) > 1 && !destDir {
		return invalidParameter("When using %s with more than one source file, the destination must be a directory and end with a /", verb)
	}
	var entries []copyEntry
	type rootedEntry struct {
		root srcFS
		e    copyEntry
	}
	var all []rootedEntry
	statEntry := -1
	for _, src := range sd.SourcePaths {
		if add && (strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")) {
			e, done, err := r.fetchURL(src, dest, destDir, owner, mode)
			if err != nil {
				return err
			}
			cleanup = append(cleanup, done)
			all = append(all, rootedEntry{nil, e})
			continue
		}
		matches, err := matchSources(srcRoot, src, verb)
		if err != nil {
			return err
		}
		isDirDest := destDir || len(matches) > 1
		for _, m := range matches {
			fi, err := fs.Stat(srcRoot, m)
			if err != nil {
				return fmt.Errorf("%s failed: %w", verb, err)
			}
			if fi.IsDir() {
				es, err := walkSource(srcRoot, m, dest, owner, mode, nil)
				if err != nil {
					return err
				}
				for _, e := range es {
					all = append(all, rootedEntry{srcRoot, e})
				}
				continue
			}
			if add {
				root, done, ok, err := r.unpackArchive(srcRoot, m)
				if err != nil {
					return err
				}
				if ok {
					cleanup = append(cleanup, done)
					es, err := walkSource(root, ".", dest, owner, mode, &struct{}{})
					if err != nil {
						return err
					}
					for _, e := range es {
						all = append(all, rootedEntry{root, e})
					}
					continue
				}
			}
			name := dest
			if isDirDest {
				name = path.Join(dest, path.Base(m))
			} else if len(sd.SourcePaths) == 1 {
				// One file onto a directory of the image lands in it:
				// looked up on a cache miss (the parent decides it).
				statEntry = len(all)
			}
			e := fileEntry(m, name, fi, owner, mode)
			all = append(all, rootedEntry{srcRoot, e})
		}
	}
	for _, sc := range sd.SourceContents {
		// A heredoc is a file of its own: named by its delimiter.
		name := dest
		if destDir || len(sd.SourcePaths)+len(sd.SourceContents) > 1 {
			name = path.Join(dest, path.Base("/"+sc.Path))
		}
		perm := fs.FileMode(0o644)
		if mode != nil {
			perm = *mode
		}
		data := sc.Data
		all = append(all, rootedEntry{nil, copyEntry{
			name: strings.TrimPrefix(name, "/"),
			hdr:  tar.Header{Typeflag: tar.TypeReg, Mode: tarMode(perm), Size: int64(len(data)), Uid: owner.uid, Gid: owner.gid, Format: tar.FormatPAX},
			src:  sc.Path,
			open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil },
		}})
	}
	// Files from several roots: each entry reads through its own root.
	for _, re := range all {
		e := re.e
		if re.root != nil && e.open == nil && e.hdr.Typeflag == tar.TypeReg {
			root, src := re.root, e.src
			e.open = func() (io.ReadCloser, error) { return root.Open(src) }
			if cs, ok := root.(contentSummer); ok {
				if sum, ok := cs.sum(src); ok {
					e.sum = &sum
				}
			}
		}
		entries = append(entries, e)
	}
	sortEntries(entries)
	hash, err := hashEntries(entries)
	if err != nil {
		return fmt.Errorf("%s failed: %w", verb, err)
	}
	createdBy := "/bin/sh -c #(nop) " + verb + " " + "content:" + hash[:16] + " in " + dest + " "
	key := stepKey(s.imageID, text+"\x00"+dest, nil, hash)
	if id, ok := r.cached(key); ok {
		s.imageID = id
		return nil
	}
	if statEntry >= 0 {
		if mode, exists, err := r.stat(s.imageID, dest); err != nil {
			return err
		} else if exists && mode.IsDir() {
			for i := range entries {
				if entries[i].name == strings.TrimPrefix(dest, "/") {
					entries[i].name = strings.TrimPrefix(path.Join(dest, path.Base(entries[i].src)), "/")
				}
			}
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeEntries(entries, pw)) }()
	id, err := r.b.cfg.Backend.BuildAddFiles(r.ctx, s.imageID, pr, CommitRequest{Config: s.cfg, CreatedBy: createdBy, Author: s.author})
	pr.CloseWithError(errors.New("build step ended"))
	if err != nil {
		return fmt.Errorf("%s failed: %w", verb, err)
	}
	r.remember(key, id)
	s.imageID = id
	return nil
}

// matchSources resolves one COPY/ADD source (a path or a glob) in root.
func matchSources(root srcFS, src, verb string) ([]string, error) {
	cleaned := path.Clean(filepath.ToSlash(src))
	if cleaned == ".." || strings.HasPrefix(cleaned, "../") {
		return nil, invalidParameter("%s failed: forbidden path outside the build context: %s ()", verb, src)
	}
	rel := strings.TrimPrefix(path.Clean("/"+cleaned), "/")
	if rel == "" {
		rel = "."
	}
	if !strings.ContainsAny(rel, "*?[") {
		if _, err := fs.Stat(root, rel); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, invalidParameter("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", verb, src)
			}
			return nil, invalidParameter("%s failed: forbidden path outside the build context: %s (%v)", verb, src, err)
		}
		return []string{rel}, nil
	}
	matches, err := fs.Glob(root, rel)
	if err != nil {
		return nil, invalidParameter("%s failed: bad pattern %q: %v", verb, src, err)
	}
	if len(matches) == 0 {
		return nil, invalidParameter("%s failed: no source files were specified", verb)
	}
	return matches, nil
}

type ownerSpec struct {
	set      bool
	uid, gid int
}

// parseChown reads --chown: uid[:gid] as numbers or names, names looked
// up in the image's /etc/passwd and /etc/group through read. A user
// without a group takes the user's primary group (a numeric uid alone:
// the same number).
func parseChown(s string, read func(path string) ([]byte, error)) (ownerSpec, error) {
	if s == "" {
		return ownerSpec{}, nil
	}
	u, g, hasG := strings.Cut(s, ":")
	fail := func(format string, args ...any) error {
		return invalidParameter("unable to convert uid/gid chown string to host mapping: "+format, args...)
	}
	uid, gid := 0, 0
	if n, err := strconv.Atoi(u); err == nil && n >= 0 {
		uid, gid = n, n
	} else {
		f, err := read("/etc/passwd")
		if err != nil {
			return ownerSpec{}, fail("can't find uid for user %s: no such user: %s", u, u)
		}
		fields, ok := lookupColonFile(f, u)
		if !ok || len(fields) < 4 {
			return ownerSpec{}, fail("can't find uid for user %s: no such user: %s", u, u)
		}
		if uid, err = strconv.Atoi(fields[2]); err != nil {
			return ownerSpec{}, fail("bad uid for user %s: %q", u, fields[2])
		}
		if gid, err = strconv.Atoi(fields[3]); err != nil {
			return ownerSpec{}, fail("bad gid for user %s: %q", u, fields[3])
		}
	}
	if hasG {
		if n, err := strconv.Atoi(g); err == nil && n >= 0 {
			gid = n
		} else {
			f, err := read("/etc/group")
			fields, ok := lookupColonFile(f, g)
			if err != nil || !ok || len(fields) < 3 {
				return ownerSpec{}, fail("can't find gid for group %s: no such group: %s", g, g)
			}
			if gid, err = strconv.Atoi(fields[2]); err != nil {
				return ownerSpec{}, fail("bad gid for group %s: %q", g, fields[2])
			}
		}
	}
	return ownerSpec{set: true, uid: uid, gid: gid}, nil
}

// lookupColonFile finds the line of name in a passwd or group file.
func lookupColonFile(data []byte, name string) ([]string, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Split(strings.TrimSpace(line), ":")
		if len(fields) > 0 && fields[0] == name {
			return fields, true
		}
	}
	return nil, false
}

// readImageFile reads one file out of an image (for --chown names).
func (r *buildRun) readImageFile(imageID, p string) ([]byte, error) {
	if imageID == "" {
		return nil, fs.ErrNotExist
	}
	exp, ok := r.b.cfg.Backend.(Exporter)
	if !ok {
		return nil, fs.ErrNotExist
	}
	rc, err := exp.BuildExport(r.ctx, imageID, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fs.ErrNotExist
		}
		if hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 16<<20))
		}
	}
}

func fileEntry(src, name string, fi fs.FileInfo, owner ownerSpec, mode *fs.FileMode) copyEntry {
	perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if mode != nil {
		perm = *mode
	}
	hdr := tar.Header{Typeflag: tar.TypeReg, Mode: int64(tarMode(perm)), Size: fi.Size(), ModTime: fi.ModTime(), Uid: owner.uid, Gid: owner.gid, Format: tar.FormatPAX}
	return copyEntry{name: strings.TrimPrefix(name, "/"), hdr: hdr, src: src}
}

func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// walkSource lists the tree at dir in root as entries under dest (the
// directory's content, not the directory itself, as Docker copies).
// keepOwners keeps the files' owners unless --chown says otherwise.
func walkSource(root srcFS, dir, dest string, owner ownerSpec, mode *fs.FileMode, keepOwners *struct{}) ([]copyEntry, error) {
	var out []copyEntry
	err := fs.WalkDir(root, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if dir == "." {
			rel = p
			if p == "." {
				rel = ""
			}
		}
		name := strings.TrimPrefix(path.Join(dest, rel), "/")
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		o := owner
		if !o.set && keepOwners != nil {
			o.uid, o.gid = fileOwner(fi)
		}
		perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		if mode != nil {
			perm = *mode
		}
		hdr := tar.Header{Mode: tarMode(perm), ModTime: fi.ModTime(), Uid: o.uid, Gid: o.gid, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			if name == "" {
				return nil
			}
			hdr.Typeflag = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := root.ReadLink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
			hdr.Mode = 0o777
		case fi.Mode().IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
		default:
			return nil
		}
		out = append(out, copyEntry{name: name, hdr: hdr, src: p})
		return nil
	})
	return out, err
}

// unpackArchive extracts src when it is a (possibly compressed) tar
// archive, with the snapshot package's safe extractor, into a temporary
// directory; ok is false for any other file.
func (r *buildRun) unpackArchive(root srcFS, src string) (srcFS, func(), bool, error) {
	f, err := root.Open(src)
	if err != nil {
		return nil, nil, false, err
	}
	rc, _, err := decompress(f)
	if err != nil {
		f.Close()
		return nil, nil, false, nil
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(rc, head)
	rc.Close()
	f.Close()
	if !looksLikeTar(head[:n]) {
		return nil, nil, false, nil
	}
	if f, err = root.Open(src); err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	rc, _, err = decompress(f)
	if err != nil {
		return nil, nil, false, err
	}
	defer rc.Close()
	dir, err := os.MkdirTemp(r.b.tmp, "add-")
	if err != nil {
		return nil, nil, false, err
	}
	done := func() { os.RemoveAll(dir) }
	if _, err := snapshot.Apply(dir, rc, snapshot.ApplyOptions{}); err != nil {
		done()
		return nil, nil, false, fmt.Errorf("ADD failed: extract %s: %w", src, err)
	}
	xr, err := os.OpenRoot(dir)
	if err != nil {
		done()
		return nil, nil, false, err
	}
	return rootFS(xr), func() { xr.Close(); done() }, true, nil
}

// fetchURL downloads an ADD source.
func (r *buildRun) fetchURL(src, dest string, destDir bool, owner ownerSpec, mode *fs.FileMode) (copyEntry, func(), error) {
	u, err := url.Parse(src)
	if err != nil {
		return copyEntry{}, nil, invalidParameter("ADD failed: bad URL %q: %v", src, err)
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, src, nil)
	if err != nil {
		return copyEntry{}, nil, err
	}
	resp, err := r.b.cfg.HTTPClient.Do(req)
	if err != nil {
		return copyEntry{}, nil, fmt.Errorf("ADD failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return copyEntry{}, nil, fmt.Errorf("ADD failed: failed to GET %s with status %s", src, resp.Status)
	}
	f, err := os.CreateTemp(r.b.tmp, "url-")
	if err != nil {
		return copyEntry{}, nil, err
	}
	done := func() { os.Remove(f.Name()) }
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	f.Close()
	if err != nil {
		done()
		return copyEntry{}, nil, fmt.Errorf("ADD failed: %s: %w", src, err)
	}
	if want := r.checksum; want != "" {
		got := "sha256:" + hex.EncodeToString(h.Sum(nil))
		if !strings.HasPrefix(want, "sha256:") {
			done()
			return copyEntry{}, nil, notImplemented("ADD --checksum=%s: only sha256 digests are supported", want)
		}
		if got != want {
			done()
			return copyEntry{}, nil, invalidParameter("ADD failed: digest mismatch for %s: %s, expected %s", src, got, want)
		}
	}
	name := dest
	if destDir {
		base := path.Base(u.Path)
		if base == "/" || base == "." || base == "" {
			done()
			return copyEntry{}, nil, invalidParameter("cannot determine filename from url: %s", src)
		}
		name = path.Join(dest, base)
	}
	mt := time.Time{}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mt = lm
	}
	perm := fs.FileMode(0o600)
	if mode != nil {
		perm = *mode
	}
	tmp := f.Name()
	e := copyEntry{
		name: strings.TrimPrefix(name, "/"),
		hdr:  tar.Header{Typeflag: tar.TypeReg, Mode: tarMode(perm), Size: n, ModTime: mt, Uid: owner.uid, Gid: owner.gid, Format: tar.FormatPAX},
		src:  src,
		open: func() (io.ReadCloser, error) { return os.Open(tmp) },
	}
	return e, done, nil
}

// fromRoot makes the files of COPY --from (a stage or an image) readable
// as a root: the paths the sources name are exported out of the image.
func (r *buildRun) fromRoot(from string, srcs []string) (srcFS, func(), error) {
	imageID := ""
	if j, ok := r.plan.stageIndex(from); ok {
		s, built := r.stageImages[j]
		if !built {
			return nil, nil, invalidParameter("COPY --from=%s: the stage is not built before this one", from)
		}
		imageID = s.imageID
	} else {
		id, _, err := r.baseImage(from)
		if err != nil {
			return nil, nil, err
		}
		imageID = id
	}
	exp, ok := r.b.cfg.Backend.(Exporter)
	if !ok {
		return nil, nil, notImplemented("COPY --from is not supported by this engine")
	}
	dir, err := os.MkdirTemp(r.b.tmp, "from-")
	if err != nil {
		return nil, nil, err
	}
	done := func() { os.RemoveAll(dir) }
	for _, src := range srcs {
		p := path.Clean("/" + src)
		if strings.ContainsAny(p, "*?[") {
			// Export the deepest directory without a pattern.
			for strings.ContainsAny(p, "*?[") {
				p = path.Dir(p)
			}
		}
		rc, err := exp.BuildExport(r.ctx, imageID, p)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("COPY --from=%s failed: %w", from, err)
		}
		target := path.Dir(p)
		if err := os.MkdirAll(filepath.Join(dir, target), 0o755); err != nil {
			rc.Close()
			done()
			return nil, nil, err
		}
		_, err = snapshot.Apply(filepath.Join(dir, target), rc, snapshot.ApplyOptions{})
		rc.Close()
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("COPY --from=%s failed: %w", from, err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		done()
		return nil, nil, err
	}
	return rootFS(root), func() { root.Close(); done() }, nil
}

// Exporter is an optional Backend that reads files out of an image
// (COPY --from): a tar of the path, named by its base name.
type Exporter interface {
	BuildExport(ctx context.Context, imageID, path string) (io.ReadCloser, error)
}

func copyConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	b, _ := json.Marshal(c)
	var out dockerspec.DockerOCIImageConfig
	_ = json.Unmarshal(b, &out)
	return out
}

func setEnv(env []string, k, v string) []string {
	out := append([]string(nil), env...)
	for i, kv := range out {
		if ek, _, _ := strings.Cut(kv, "="); ek == k {
			out[i] = k + "=" + v
			return out
		}
	}
	return append(out, k+"="+v)
}

// exposedPorts expands an EXPOSE word ("80", "80/udp", "8000-8002").
func exposedPorts(w string) ([]string, error) {
	port, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	lo, hi, isRange := strings.Cut(port, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, invalidParameter("invalid containerPort: %s", port)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, invalidParameter("invalid containerPort: %s", port)
		}
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}

// cmdText is an instruction as the Dockerfile wrote it.
func cmdText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(cmd.Name())
}
