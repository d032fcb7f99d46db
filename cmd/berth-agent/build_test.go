//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerBuild runs `docker build` with the classic builder.
func (e *engine) dockerBuild(stdin []byte, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"build"}, args...)...)
	cmd.Env = append(e.env(), "DOCKER_BUILDKIT=0")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{"build"}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n" + err.Error()
	}
	return r
}

func (e *engine) buildOK(t *testing.T, args ...string) string {
	t.Helper()
	r := e.dockerBuild(nil, args...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r.stdout
}

// writeContext writes files (name -> content) into a new directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *engine) removeImageLater(t *testing.T, ref string) {
	t.Cleanup(func() { e.docker(nil, "rmi", "-f", ref) })
}

// TestBuildCore builds an image with the core instructions and checks the
// step output, the image's config, its files and a container of it.
func TestBuildCore(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE=` + testImage + `
FROM ${BASE}
ARG GREETING=hello
ENV APP_HOME=/app PATH_EXTRA=${GREETING:-none}
WORKDIR $APP_HOME
COPY hello.txt ./
COPY dir/ sub/
COPY --chmod=700 --chown=1000:1001 script.sh /usr/local/bin/
RUN echo "built by $GREETING" > built.txt && cat hello.txt
LABEL org.example.name="core test" stage=${GREETING}
EXPOSE 8080 9000/udp
USER 1000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/built.txt /app/hello.txt"]
`,
		"hello.txt":     "hello from the context\n",
		"dir/a.txt":     "a\n",
		"dir/b/c.txt":   "c\n",
		"script.sh":     "#!/bin/sh\necho script\n",
		"ignored.txt":   "should not be sent\n",
		".dockerignore": "ignored.txt\n",
	})
	tag := "berth-build/core:test"
	e.removeImageLater(t, tag)
	out := e.buildOK(t, "-t", tag, "--build-arg", "GREETING=bonjour", "--label", "extra=yes", dir)
	for _, want := range []string{"Step 1/15 : FROM ${BASE}", "Step 8/15 : RUN echo", "hello from the context", "Successfully built ", "Successfully tagged " + tag} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if got := e.ok(t, "run", "--rm", tag); got != "built by bonjour\nhello from the context" {
		t.Errorf("container output %q", got)
	}
	cfg := e.ok(t, "image", "inspect", "-f", "{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{index .Config.Labels \"org.example.name\"}}|{{index .Config.Labels \"stage\"}}|{{index .Config.Labels \"extra\"}}|{{.Config.StopSignal}}", tag)
	want := `/app|1000|["/bin/sh","-c"]|["cat /app/built.txt /app/hello.txt"]|core test|bonjour|yes|SIGTERM`
	if cfg != want {
		t.Errorf("image config %q, want %q", cfg, want)
	}
	env := e.ok(t, "image", "inspect", "-f", "{{json .Config.Env}} {{json .Config.ExposedPorts}}", tag)
	for _, w := range []string{`"APP_HOME=/app"`, `"PATH_EXTRA=bonjour"`, `"8080/tcp"`, `"9000/udp"`} {
		if !strings.Contains(env, w) {
			t.Errorf("image env/ports %s lack %s", env, w)
		}
	}
	files := e.ok(t, "run", "--rm", "--user", "0", "--entrypoint", "sh", tag, "-c",
		"cat sub/a.txt sub/b/c.txt; stat -c '%a %u %g' /usr/local/bin/script.sh; test -e ignored.txt && echo ignored-present; echo end")
	if files != "a\nc\n700 1000 1001\nend" {
		t.Errorf("files in the image: %q", files)
	}
	// The steps' images are intermediate: hidden from `docker images`
	// without -a, and removed with the last image built on them.
	var steps []string
	for _, line := range strings.Split(out, "\n") {
		if id, ok := strings.CutPrefix(line, " ---> "); ok && !strings.Contains(id, " ") {
			steps = append(steps, id)
		}
	}
	if len(steps) < 3 {
		t.Fatalf("no step images in the output:\n%s", out)
	}
	mid := steps[len(steps)-2]
	if list := e.ok(t, "images", "-q"); strings.Contains(list, mid) {
		t.Errorf("docker images lists the intermediate image %s:\n%s", mid, list)
	}
	if list := e.ok(t, "images", "-a", "-q"); !strings.Contains(list, mid) {
		t.Errorf("docker images -a does not list the intermediate image %s:\n%s", mid, list)
	}
	e.ok(t, "rmi", tag)
	if list := e.ok(t, "images", "-a", "-q"); strings.Contains(list, mid) {
		t.Errorf("the intermediate image %s outlives the image built on it:\n%s", mid, list)
	}
}

// TestBuildCache rebuilds: no change uses the cache for every step, a
// touched but unchanged file keeps it, a changed file invalidates from its
// COPY on, --no-cache uses none, and builder prune empties it.
func TestBuildCache(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy.txt\"]\n",
		"a.txt":      "one\n",
		"b.txt":      "bee\n",
	})
	tag := "berth-build/cache:test"
	e.removeImageLater(t, tag)
	e.removeImageLater(t, "berth-build/cache")
	first := e.buildOK(t, "-t", tag, "-t", "berth-build/cache", dir)
	if !strings.Contains(first, "Successfully tagged berth-build/cache:latest") {
		t.Errorf("the second tag is not reported as Docker names it:\n%s", first)
	}
	if strings.Contains(first, "Using cache") {
		t.Fatalf("first build used the cache:\n%s", first)
	}
	id1 := e.ok(t, "image", "inspect", "-f", "{{.Id}}", tag)

	second := e.buildOK(t, "-t", tag, dir)
	if n := strings.Count(second, "Using cache"); n != 5 {
		t.Errorf("no-change rebuild used the cache %d times, want 5:\n%s", n, second)
	}
	if id := e.ok(t, "image", "inspect", "-f", "{{.Id}}", tag); id != id1 {
		t.Errorf("no-change rebuild made %s, want %s", id, id1)
	}

	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), now, now); err != nil {
		t.Fatal(err)
	}
	touched := e.buildOK(t, "-t", tag, dir)
	if n := strings.Count(touched, "Using cache"); n != 5 {
		t.Errorf("rebuild after a touch used the cache %d times, want 5:\n%s", n, touched)
	}

	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := e.buildOK(t, "-t", tag, dir)
	if n := strings.Count(changed, "Using cache"); n != 1 {
		t.Errorf("rebuild after a change used the cache %d times, want 1 (ENV only):\n%s", n, changed)
	}
	if got := e.ok(t, "run", "--rm", tag); got != "two" {
		t.Errorf("container of the rebuilt image prints %q", got)
	}

	if out := e.buildOK(t, "--no-cache", "-t", tag, dir); strings.Contains(out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out)
	}
	e.ok(t, "builder", "prune", "-f")
	if code, r := e.code("image", "inspect", tag); code != 0 {
		t.Errorf("builder prune removed the named image %s: %v", tag, r)
	}
	if out := e.buildOK(t, "-t", tag, dir); strings.Contains(out, "Using cache") {
		t.Errorf("build after builder prune used the cache:\n%s", out)
	}
}

// TestBuildMultiStage builds only the stages the target needs, copies
// between stages, runs ONBUILD triggers, and honours --target.
func TestBuildMultiStage(t *testing.T) {
	e := needEngine(t)
	base := "berth-build/onbuild:test"
	e.removeImageLater(t, base)
	baseDir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD RUN echo triggered >> /trigger.txt\n",
	})
	e.buildOK(t, "-t", base, baseDir)

	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + testImage + ` AS unused
RUN exit 7

FROM ` + base + ` AS build
RUN mkdir -p /out && echo artifact > /out/artifact.txt

FROM ` + testImage + `
COPY --from=build /out/artifact.txt /trigger.txt /result/
SHELL ["/bin/sh", "-ec"]
VOLUME /data
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo child
MAINTAINER someone@example.com
CMD cat /result/artifact.txt /result/trigger.txt
`,
		"trigger.txt": "from the trigger\n",
	})
	tag := "berth-build/multi:test"
	e.removeImageLater(t, tag)
	out := e.buildOK(t, "-t", tag, dir)
	if strings.Contains(out, "exit 7") {
		t.Errorf("the unused stage was built:\n%s", out)
	}
	if !strings.Contains(out, "Executing 2 build triggers") {
		t.Errorf("no ONBUILD triggers in the output:\n%s", out)
	}
	if got := e.ok(t, "run", "--rm", tag); got != "artifact\nfrom the trigger\ntriggered" {
		t.Errorf("container output %q", got)
	}
	cfg := e.ok(t, "image", "inspect", "-f", "{{json .Config.Shell}}|{{json .Config.Volumes}}|{{json .Config.Healthcheck.Test}}|{{json .Config.OnBuild}}|{{.Author}}|{{json .Config.Cmd}}", tag)
	want := `["/bin/sh","-ec"]|{"/data":{}}|["CMD-SHELL","true"]|["RUN echo child"]|someone@example.com|["/bin/sh","-ec","cat /result/artifact.txt /result/trigger.txt"]`
	if cfg != want {
		t.Errorf("image config %s, want %s", cfg, want)
	}

	target := "berth-build/target:test"
	e.removeImageLater(t, target)
	out = e.buildOK(t, "--target", "build", "-t", target, dir)
	if strings.Contains(out, "exit 7") || strings.Contains(out, "COPY --from") {
		t.Errorf("--target build ran other stages:\n%s", out)
	}
	if got := e.ok(t, "run", "--rm", target, "cat", "/out/artifact.txt"); got != "artifact" {
		t.Errorf("--target image has %q", got)
	}
	if r := e.dockerBuild(nil, "--target", "nosuch", dir); r.code == 0 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("--target of a missing stage: %v", r)
	}
}

// TestBuildFailures: a failing RUN shows its output and exit code and
// tags nothing; a COPY from outside the context is refused.
func TestBuildFailures(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nRUN echo about to fail && exit 3\n",
	})
	tag := "berth-build/fail:test"
	r := e.dockerBuild(nil, "-t", tag, dir)
	if r.code != 3 || !strings.Contains(r.stdout, "about to fail") || !strings.Contains(r.stderr, "returned a non-zero code: 3") {
		t.Errorf("failing RUN: %v", r)
	}
	if code, _ := e.code("image", "inspect", tag); code == 0 {
		t.Errorf("a failed build tagged %s", tag)
	}
	if r := e.dockerBuild(nil, "-t", "Bad:Name", dir); r.code == 0 || strings.Contains(r.stdout, "Step 1") {
		t.Errorf("a build with an invalid name ran: %v", r)
	}
	esc := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nCOPY ../secret /secret\n",
	})
	r = e.dockerBuild(nil, esc)
	if r.code == 0 || !strings.Contains(r.stderr, "outside the build context") {
		t.Errorf("COPY from outside the context: %v", r)
	}
	link := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nCOPY escape/passwd /passwd\n",
	})
	if err := os.Symlink("/etc", filepath.Join(link, "escape")); err != nil {
		t.Fatal(err)
	}
	if r := e.dockerBuild(nil, link); r.code == 0 {
		t.Errorf("COPY through a symlink out of the context succeeded: %v", r)
	}
}

// TestBuildInputs: a Dockerfile from stdin, a context tar on stdin, a
// context at a URL, ADD of a local tar (extracted) and of a URL, -q and
// --iidfile.
func TestBuildInputs(t *testing.T) {
	e := needEngine(t)
	// A tar.gz for ADD, and a server for the URL cases.
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	body := []byte("inside the archive\n")
	_ = tw.WriteHeader(&tar.Header{Name: "pkg/readme.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(body)
	_ = tw.Close()
	_ = zw.Close()

	var ctxTar bytes.Buffer
	tw = tar.NewWriter(&ctxTar)
	df := []byte("FROM " + testImage + "\nCOPY note.txt /note.txt\n")
	note := []byte("remote context\n")
	_ = tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
	_, _ = tw.Write(df)
	_ = tw.WriteHeader(&tar.Header{Name: "note.txt", Mode: 0o644, Size: int64(len(note))})
	_, _ = tw.Write(note)
	_ = tw.Close()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file.txt":
			_, _ = w.Write([]byte("downloaded\n"))
		case "/context.tar":
			_, _ = w.Write(ctxTar.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	dir := writeContext(t, map[string]string{
		"pkg.tar.gz": tgz.String(),
	})
	dockerfile := "FROM " + testImage + "\nADD pkg.tar.gz /opt/\nADD " + srv.URL + "/file.txt /dl/\nCMD cat /opt/pkg/readme.txt /dl/file.txt\n"
	tag := "berth-build/inputs:test"
	e.removeImageLater(t, tag)
	iid := filepath.Join(t.TempDir(), "iid")
	r := e.dockerBuild([]byte(dockerfile), "-q", "--iidfile", iid, "-t", tag, "-f", "-", dir)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	id, err := os.ReadFile(iid)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(r.stdout) != strings.TrimSpace(string(id)) || !strings.HasPrefix(string(id), "sha256:") || strings.Contains(r.stdout, "Step") {
		t.Errorf("-q printed %q, iidfile has %q", r.stdout, id)
	}
	if got := e.ok(t, "run", "--rm", tag); got != "inside the archive\ndownloaded" {
		t.Errorf("container output %q", got)
	}

	stdinTag := "berth-build/stdin:test"
	e.removeImageLater(t, stdinTag)
	if r := e.dockerBuild(ctxTar.Bytes(), "-t", stdinTag, "-"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := e.ok(t, "run", "--rm", stdinTag, "cat", "/note.txt"); got != "remote context" {
		t.Errorf("context from stdin: %q", got)
	}
	urlTag := "berth-build/url:test"
	e.removeImageLater(t, urlTag)
	if r := e.dockerBuild(nil, "-t", urlTag, srv.URL+"/context.tar"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := e.ok(t, "run", "--rm", urlTag, "cat", "/note.txt"); got != "remote context" {
		t.Errorf("context from a URL: %q", got)
	}
	sum := sha256.Sum256([]byte("downloaded\n"))
	good := writeContext(t, map[string]string{"Dockerfile": "FROM " + testImage + "\nADD --checksum=sha256:" + hex.EncodeToString(sum[:]) + " " + srv.URL + "/file.txt /f\n"})
	if r := e.dockerBuild(nil, good); r.code != 0 {
		t.Errorf("ADD with the right checksum: %v", r)
	}
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM " + testImage + "\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " " + srv.URL + "/file.txt /f\n"})
	if r := e.dockerBuild(nil, bad); r.code == 0 || !strings.Contains(r.stderr, "digest mismatch") {
		t.Errorf("ADD with a wrong checksum: %v", r)
	}
}

// TestBuildHealthcheck: an image's HEALTHCHECK turns its container
// unhealthy; --no-healthcheck disables it.
func TestBuildHealthcheck(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nHEALTHCHECK --interval=100ms --retries=2 CMD test -f /healthy\nCMD [\"sleep\", \"60\"]\n",
	})
	tag := "berth-build/health:test"
	e.removeImageLater(t, tag)
	e.buildOK(t, "-t", tag, dir)
	id := e.runDetached(t, tag)
	eventually(t, "container of the image unhealthy", func() (bool, string) {
		h := e.inspect(t, id).State.Health
		return h != nil && h.Status == "unhealthy", healthString(h)
	})
	off := e.runDetached(t, "--no-healthcheck", tag)
	if h := e.inspect(t, off).State.Health; h != nil {
		t.Errorf("--no-healthcheck on an image with a HEALTHCHECK: %s", healthString(h))
	}
}

// TestBuildScratch copies a stage's files into an image FROM scratch and
// refuses a platform that is not the engine's.
func TestBuildScratch(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + " AS tools\nRUN mkdir -p /out/bin && cp /bin/busybox /out/bin/busybox && echo from-scratch > /out/msg\n" +
			"FROM scratch\nCOPY --from=tools /out/ /\nCOPY local.txt /local.txt\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/msg\", \"/local.txt\"]\n",
		"local.txt": "local\n",
	})
	tag := "berth-build/scratch:test"
	e.removeImageLater(t, tag)
	e.buildOK(t, "-t", tag, dir)
	if got := e.ok(t, "run", "--rm", tag); got != "from-scratch\nlocal" {
		t.Errorf("container of the scratch image prints %q", got)
	}
	if n := e.ok(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", tag); n != "2" {
		t.Errorf("the scratch image has %s layers, want 2", n)
	}
	if r := e.dockerBuild(nil, "--platform", "linux/s390x", dir); r.code == 0 || !strings.Contains(r.stderr, "s390x") {
		t.Errorf("a build for another platform: %v", r)
	}
}

// TestBuildChownNames resolves --chown names in the image's passwd and
// group files.
func TestBuildChownNames(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nRUN mkdir -p /etc && echo 'app:x:2000:2001::/app:/bin/sh' >> /etc/passwd && echo 'grp:x:2002:' >> /etc/group\n" +
			"COPY --chown=app f.txt /user-only\nCOPY --chown=app:grp f.txt /user-group\n",
		"f.txt": "f\n",
	})
	tag := "berth-build/chown:test"
	e.removeImageLater(t, tag)
	e.buildOK(t, "-t", tag, dir)
	if got := e.ok(t, "run", "--rm", tag, "stat", "-c", "%u:%g", "/user-only", "/user-group"); got != "2000:2001\n2000:2002" {
		t.Errorf("owners %q", got)
	}
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM " + testImage + "\nCOPY --chown=nosuchuser Dockerfile /x\n"})
	if r := e.dockerBuild(nil, bad); r.code == 0 || !strings.Contains(r.stderr, "no such user") {
		t.Errorf("--chown of a missing user: %v", r)
	}
}

// TestBuildDirectories: WORKDIR makes a missing directory and leaves an
// existing one as it is; a file copied onto a directory of the image
// lands inside it.
func TestBuildDirectories(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nWORKDIR /tmp\nWORKDIR /work/dir\nCOPY f.txt /work/dir\nCOPY f.txt /bin\nCOPY f.txt /renamed\n",
		"f.txt":      "f\n",
	})
	tag := "berth-build/dirs:test"
	e.removeImageLater(t, tag)
	e.buildOK(t, "-t", tag, dir)
	before := e.ok(t, "run", "--rm", testImage, "stat", "-c", "%a %u", "/tmp")
	after := e.ok(t, "run", "--rm", tag, "stat", "-c", "%a %u", "/tmp")
	if before != after {
		t.Errorf("WORKDIR /tmp changed /tmp from %q to %q", before, after)
	}
	got := e.ok(t, "run", "--rm", tag, "sh", "-c", "stat -c '%F %a' /work/dir; cat /work/dir/f.txt /bin/f.txt /renamed")
	if got != "directory 755\nf\nf\nf" {
		t.Errorf("image content: %q", got)
	}
}

// TestBuildHeredocs: RUN with a heredoc script, a heredoc fed to a
// command, and COPY of a heredoc with variables expanded.
func TestBuildHeredocs(t *testing.T) {
	e := needEngine(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nARG NAME=world\nRUN <<EOF\necho \"hello $NAME\" > /greeting\necho second >> /greeting\nEOF\n" +
			"RUN cat > /from-cat <<EOT\ncat-content\nEOT\nCOPY <<EOF /motd\nmotd for ${NAME}\nEOF\n",
	})
	tag := "berth-build/heredoc:test"
	e.removeImageLater(t, tag)
	e.buildOK(t, "-t", tag, dir)
	if got := e.ok(t, "run", "--rm", tag, "cat", "/greeting", "/from-cat", "/motd"); got != "hello world\nsecond\ncat-content\nmotd for world" {
		t.Errorf("heredoc results: %q", got)
	}
}

// TestBuildCacheLifetime checks that the build cache survives an engine
// restart and that `docker system prune` empties it.
func TestBuildCacheLifetime(t *testing.T) {
	e := ownEngine(t, "buildcache")
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\n",
		"a.txt":      "one\n",
	})
	if out := e.buildOK(t, dir); strings.Contains(out, "Using cache") {
		t.Fatalf("first build used the cache:\n%s", out)
	}
	if err := e.stop(); err != nil {
		t.Fatalf("stop engine: %v", err)
	}
	if err := e.start(); err != nil {
		t.Fatalf("start engine again: %v", err)
	}
	if out := e.buildOK(t, dir); strings.Count(out, "Using cache") != 2 {
		t.Fatalf("rebuild after an engine restart did not use the cache for both steps:\n%s", out)
	}
	out := e.ok(t, "system", "prune", "-f")
	if !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("docker system prune printed:\n%s", out)
	}
	if out := e.buildOK(t, dir); strings.Contains(out, "Using cache") {
		t.Fatalf("build after docker system prune used the cache:\n%s", out)
	}
}

// TestBuildPullAndNetwork checks --pull against a registry whose tag has
// moved on from the local image, and that RUN steps get the build's
// --network.
func TestBuildPullAndNetwork(t *testing.T) {
	e := needRegistryEngine(t)
	reg := startRegistry(t, registryOptions{})
	base := reg.host + "/berth/base:v1"
	e.removeImageLater(t, base)
	for _, which := range []string{"old", "new"} {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + testImage + "\nRUN echo " + which + " > /which\n"})
		e.buildOK(t, "-t", base, "-t", "berth-build/base:"+which, dir)
		e.removeImageLater(t, "berth-build/base:"+which)
	}
	e.ok(t, "push", base) // the registry has "new"
	e.ok(t, "tag", "berth-build/base:old", base)

	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nCMD [\"cat\", \"/which\"]\n"})
	e.buildOK(t, "-t", "berth-build/pulled", dir)
	e.removeImageLater(t, "berth-build/pulled")
	if got := e.ok(t, "run", "--rm", "berth-build/pulled"); got != "old" {
		t.Errorf("without --pull the build used %q, want the local image (old)", got)
	}
	e.buildOK(t, "--pull", "-t", "berth-build/pulled", dir)
	if got := e.ok(t, "run", "--rm", "berth-build/pulled"); got != "new" {
		t.Errorf("with --pull the build used %q, want the registry's image (new)", got)
	}

	nets := func(args ...string) string {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + testImage + "\nRUN ls /sys/class/net | tr '\\n' ' ' > /nets\nCMD [\"cat\", \"/nets\"]\n"})
		e.buildOK(t, append(append([]string{"--no-cache", "-t", "berth-build/nets"}, args...), dir)...)
		return strings.TrimSpace(e.ok(t, "run", "--rm", "--network", "none", "berth-build/nets"))
	}
	e.removeImageLater(t, "berth-build/nets")
	if got := nets("--network", "none"); got != "lo" {
		t.Errorf("RUN with --network none sees interfaces %q, want lo only", got)
	}
	if got := nets(); !strings.Contains(got, "eth0") {
		t.Errorf("RUN on the default network sees interfaces %q, want eth0 among them", got)
	}
	// Interfaces of the host that exist before and after the build (other
	// tests may add and remove veths meanwhile) are all seen by the RUN.
	hostNets := func() map[string]bool {
		ds, err := os.ReadDir("/sys/class/net")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, d := range ds {
			m[d.Name()] = true
		}
		return m
	}
	before := hostNets()
	got := nets("--network", "host")
	after := hostNets()
	seen := map[string]bool{}
	for _, n := range strings.Fields(got) {
		seen[n] = true
	}
	for n := range before {
		if after[n] && !seen[n] {
			t.Errorf("RUN with --network host sees interfaces %q, without the host's %s", got, n)
		}
	}
}
