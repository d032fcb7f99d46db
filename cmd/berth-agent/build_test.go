//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
}
