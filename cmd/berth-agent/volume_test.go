//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (e *engine) volumeInspect(t *testing.T, name string) volume.Volume {
	t.Helper()
	var vs []volume.Volume
	if err := json.Unmarshal([]byte(e.ok(t, "volume", "inspect", name)), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("volume inspect %s: %v", name, err)
	}
	return vs[0]
}

func (e *engine) volumeNames(t *testing.T, args ...string) []string {
	t.Helper()
	return nonEmptyLines(e.ok(t, append([]string{"volume", "ls", "-q"}, args...)...))
}

// mountedOnHost reports whether path is a mount point in this (the
// engine's) mount namespace.
func mountedOnHost(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Point == path {
			return true
		}
	}
	return false
}

// TestVolumes drives docker volume and -v/--mount with the docker CLI.
func TestVolumes(t *testing.T) {
	e := needEngine(t)

	t.Run("create ls inspect rm", func(t *testing.T) {
		name := uniqueName("vol-labels")
		since := time.Now().Add(-time.Second).Unix()
		if got := e.ok(t, "volume", "create", "--label", "team=storage", "--label", "flag", name); got != name {
			t.Fatalf("volume create printed %q", got)
		}
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		v := e.volumeInspect(t, name)
		if v.Driver != "local" || v.Scope != "local" || v.Labels["team"] != "storage" || !strings.HasPrefix(v.Mountpoint, e.dataRoot) {
			t.Errorf("inspect %+v", v)
		}
		if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
			t.Errorf("mountpoint %s: %v", v.Mountpoint, err)
		}
		for _, f := range []string{"label=team=storage", "label=flag", "name=" + name[:6], "dangling=true", "driver=local"} {
			if !slices.Contains(e.volumeNames(t, "--filter", f), name) {
				t.Errorf("volume ls --filter %s misses %s", f, name)
			}
		}
		for _, f := range []string{"label=team=other", "dangling=false", "name=zzz-none"} {
			if slices.Contains(e.volumeNames(t, "--filter", f), name) {
				t.Errorf("volume ls --filter %s lists %s", f, name)
			}
		}
		if code, r := e.code("volume", "ls", "--filter", "bogus=1"); code == 0 || !strings.Contains(r.stderr, "invalid filter 'bogus'") {
			t.Errorf("unknown filter: %v", r)
		}
		if code, r := e.code("volume", "create", "a/b"); code == 0 || !strings.Contains(r.stderr, "includes invalid characters") {
			t.Errorf("bad name: %v", r)
		}
		e.ok(t, "volume", "rm", name)
		if code, r := e.code("volume", "inspect", name); code == 0 || !strings.Contains(r.stderr, "no such volume") {
			t.Errorf("inspect after rm: %v", r)
		}
		if _, err := os.Stat(v.Mountpoint); !os.IsNotExist(err) {
			t.Errorf("data of removed volume left behind: %v", err)
		}
		evs := e.ok(t, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "type=volume", "--filter", "volume="+name, "--format", "{{.Action}}")
		if got := strings.Fields(evs); !slices.Equal(got, []string{"create", "destroy"}) {
			t.Errorf("volume events %v", got)
		}
	})

	t.Run("copy-up once", func(t *testing.T) {
		name := uniqueName("vol-copyup")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		out := e.ok(t, "run", "--rm", "-v", name+":/etc", testImage, "sh", "-c", "cat /etc/passwd; stat -c '%a %u' /etc/passwd")
		if !strings.Contains(out, "root:") || !strings.HasSuffix(out, "644 0") {
			t.Fatalf("volume over /etc did not get the image's files: %q", out)
		}
		// Emptied, it stays empty: the copy happens on the first mount only.
		e.ok(t, "run", "--rm", "-v", name+":/etc", testImage, "sh", "-c", "rm -rf /etc/* /etc/.[!.]* 2>/dev/null; true")
		// (The engine's hostname, hosts and resolv.conf mount points land in
		// a volume over /etc, as with dockerd.)
		const listEtc = "ls -A /etc | grep -v -x -e hostname -e hosts -e resolv.conf; true"
		if out := e.ok(t, "run", "--rm", "-v", name+":/etc", testImage, "sh", "-c", listEtc); out != "" {
			t.Errorf("emptied volume copied up again: %q", out)
		}
		nc := uniqueName("vol-nocopy")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", nc) })
		if out := e.ok(t, "run", "--rm", "-v", nc+":/etc:nocopy", testImage, "sh", "-c", listEtc); out != "" {
			t.Errorf("nocopy volume got %q", out)
		}
	})

	t.Run("in use", func(t *testing.T) {
		name := uniqueName("vol-inuse")
		id := e.create(t, "-v", name+":/data", testImage, "true")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		code, r := e.code("volume", "rm", name)
		if code == 0 || !strings.Contains(r.stderr, "volume is in use - ["+id+"]") {
			t.Errorf("rm of a used volume: %v", r)
		}
		if slices.Contains(e.volumeNames(t, "--filter", "dangling=true"), name) {
			t.Errorf("used volume listed as dangling")
		}
		e.ok(t, "rm", id)
		e.ok(t, "volume", "rm", name)
	})

	t.Run("anonymous and rm -v", func(t *testing.T) {
		id := e.create(t, "-v", "/data", testImage, "true")
		ins := e.inspect(t, id)
		if len(ins.Mounts) != 1 || ins.Mounts[0].Type != mount.TypeVolume || !hex64.MatchString(ins.Mounts[0].Name) || ins.Mounts[0].Destination != "/data" {
			t.Fatalf("mounts %+v", ins.Mounts)
		}
		anon := ins.Mounts[0].Name
		if !slices.Contains(e.volumeNames(t), anon) {
			t.Fatalf("volume ls misses anonymous %s", anon)
		}
		if _, ok := e.volumeInspect(t, anon).Labels["com.docker.volume.anonymous"]; !ok {
			t.Errorf("anonymous volume without the anonymous label")
		}
		e.ok(t, "rm", "-v", id)
		if slices.Contains(e.volumeNames(t), anon) {
			t.Errorf("rm -v left anonymous volume %s", anon)
		}
		// --rm removes the anonymous volumes too, never named ones.
		named := uniqueName("vol-kept")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", named) })
		before := e.volumeNames(t)
		e.ok(t, "run", "--rm", "-v", "/scratch", "-v", named+":/kept", testImage, "true")
		after := e.volumeNames(t)
		if !slices.Contains(after, named) || len(after) != len(before)+1 {
			t.Errorf("volumes before %v after %v", before, after)
		}
	})

	t.Run("image VOLUME", func(t *testing.T) {
		src := e.create(t, testImage, "sh", "-c", "mkdir -p /data && echo from-image > /data/hello")
		e.ok(t, "start", "-a", src)
		tag := "berth-test/withvol:" + strings.ToLower(uniqueName("v"))
		e.ok(t, "commit", "--change", "VOLUME /data", src, tag)
		t.Cleanup(func() { e.docker(nil, "rmi", "-f", tag) })
		id := e.create(t, tag, "cat", "/data/hello")
		if out := e.ok(t, "start", "-a", id); out != "from-image" {
			t.Errorf("image VOLUME content %q", out)
		}
		ins := e.inspect(t, id)
		if len(ins.Mounts) != 1 || ins.Mounts[0].Destination != "/data" || !hex64.MatchString(ins.Mounts[0].Name) {
			t.Errorf("mounts %+v", ins.Mounts)
		}
		e.ok(t, "rm", "-v", id)
	})

	t.Run("volumes-from", func(t *testing.T) {
		name := uniqueName("vol-from")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		src := e.create(t, "-v", name+":/shared", "-v", "/anon", testImage, "sh", "-c", "echo shared > /shared/f; echo anon > /anon/f")
		e.ok(t, "start", "-a", src)
		if out := e.ok(t, "run", "--rm", "--volumes-from", src, testImage, "cat", "/shared/f", "/anon/f"); out != "shared\nanon" {
			t.Errorf("--volumes-from read %q", out)
		}
		if code, _ := e.code("run", "--rm", "--volumes-from", src+":ro", testImage, "touch", "/shared/g"); code == 0 {
			t.Errorf("--volumes-from :ro is writable")
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		if code, r := e.code("run", "--rm", "--tmpfs", "/t:size=1m", testImage, "dd", "if=/dev/zero", "of=/t/f", "bs=1024", "count=2048"); code == 0 || !strings.Contains(r.stderr, "No space left") {
			t.Errorf("write past the tmpfs size: %v", r)
		}
		out := e.ok(t, "run", "--rm", "--mount", "type=tmpfs,destination=/t,tmpfs-size=1048576,tmpfs-mode=1770", testImage, "stat", "-c", "%a", "/t")
		if out != "1770" {
			t.Errorf("tmpfs mode %q", out)
		}
	})

	t.Run("read-only rootfs", func(t *testing.T) {
		name := uniqueName("vol-ro")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		if code, _ := e.code("run", "--rm", "--read-only", testImage, "touch", "/x"); code == 0 {
			t.Errorf("--read-only rootfs is writable")
		}
		e.ok(t, "run", "--rm", "--read-only", "-v", name+":/data", testImage, "touch", "/data/x")
	})

	t.Run("binds", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
		if err := os.WriteFile(filepath.Join(sub, "inner"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if out := e.ok(t, "run", "--rm", "-v", filepath.Join(dir, "f")+":/file:ro", testImage, "cat", "/file"); out != "host" {
			t.Errorf("file bind read %q", out)
		}
		if out := e.ok(t, "run", "--rm", "-v", dir+":/h:ro", testImage, "cat", "/h/f"); out != "host" {
			t.Errorf("bind read %q", out)
		}
		if code, _ := e.code("run", "--rm", "-v", dir+":/h:ro", testImage, "touch", "/h/g"); code == 0 {
			t.Errorf("read-only bind is writable")
		}
		e.ok(t, "run", "--rm", "-v", dir+":/h", testImage, "sh", "-c", "echo ctr > /h/g")
		if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != "ctr\n" {
			t.Errorf("write through bind: %q", b)
		}
		// Recursive by default; bind-recursive=disabled leaves submounts out.
		if out := e.ok(t, "run", "--rm", "-v", dir+":/h", testImage, "ls", "/h/sub"); out != "inner" {
			t.Errorf("recursive bind shows %q", out)
		}
		if out := e.ok(t, "run", "--rm", "--mount", "type=bind,src="+dir+",dst=/h,bind-recursive=disabled", testImage, "ls", "/h/sub"); out != "" {
			t.Errorf("non-recursive bind shows %q", out)
		}
		for prop, tag := range map[string]string{"rshared": "shared:", "rprivate": ""} {
			out := e.ok(t, "run", "--rm", "-v", dir+":/h:"+prop, testImage, "grep", " /h ", "/proc/self/mountinfo")
			if fields := strings.SplitN(out, " - ", 2)[0]; (tag != "" && !strings.Contains(fields, tag)) || (tag == "" && (strings.Contains(fields, "shared:") || strings.Contains(fields, "master:"))) {
				t.Errorf("%s bind in the container's mountinfo: %q", prop, out)
			}
		}
		id := e.create(t, "--mount", "type=bind,src="+dir+",dst=/h,bind-propagation=rslave", "-v", dir+":/h2:ro", testImage, "true")
		ms := e.inspect(t, id).Mounts
		byDst := map[string]string{}
		for _, m := range ms {
			byDst[m.Destination] = string(m.Type) + " " + string(m.Propagation) + " " + strings.ToLower(strings.TrimSpace(boolWord(m.RW)))
		}
		if byDst["/h"] != "bind rslave rw" || byDst["/h2"] != "bind rprivate ro" {
			t.Errorf("bind mounts in inspect: %v", byDst)
		}
	})

	t.Run("driver options", func(t *testing.T) {
		name := uniqueName("vol-tmpfs")
		e.ok(t, "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m,mode=0750", name)
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		v := e.volumeInspect(t, name)
		if v.Options["type"] != "tmpfs" || v.Options["o"] != "size=1m,mode=0750" {
			t.Errorf("options %v", v.Options)
		}
		out := e.ok(t, "run", "--rm", "-v", name+":/d", testImage, "sh", "-c", "stat -c %a /d; dd if=/dev/zero of=/d/f bs=1024 count=2048 2>&1 | grep -o 'No space left'")
		if out != "750\nNo space left" {
			t.Errorf("tmpfs volume: %q", out)
		}
		if mountedOnHost(t, v.Mountpoint) {
			t.Errorf("volume device still mounted after its container ended")
		}
		// The common "bind volume": type=none, o=bind, device=host dir.
		hostDir := t.TempDir()
		bv := uniqueName("vol-bind")
		e.ok(t, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device="+hostDir, bv)
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", bv) })
		e.ok(t, "run", "--rm", "-v", bv+":/d", testImage, "sh", "-c", "echo via-volume > /d/f")
		if b, err := os.ReadFile(filepath.Join(hostDir, "f")); err != nil || string(b) != "via-volume\n" {
			t.Errorf("bind volume wrote %q %v", b, err)
		}
		if code, r := e.code("volume", "create", "--opt", "foo=bar", uniqueName("vol-bad")); code == 0 || !strings.Contains(r.stderr, `invalid option: "foo"`) {
			t.Errorf("unknown option: %v", r)
		}
	})

	t.Run("prune", func(t *testing.T) {
		named := uniqueName("vol-prune")
		e.ok(t, "volume", "create", named)
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", named) })
		id := e.create(t, "-v", "/anon", testImage, "true")
		anon := e.inspect(t, id).Mounts[0].Name
		e.ok(t, "rm", id) // without -v: the volume stays, unused
		out := e.ok(t, "volume", "prune", "-f")
		if !strings.Contains(out, anon) || strings.Contains(out, named) {
			t.Errorf("prune removed: %q", out)
		}
		out = e.ok(t, "volume", "prune", "-af", "--filter", "label!=nothing")
		if !strings.Contains(out, named) {
			t.Errorf("prune -a kept %s: %q", named, out)
		}
	})

	t.Run("no mounts left", func(t *testing.T) {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		ms, err := parseMountinfo(string(b))
		if err != nil {
			t.Fatal(err)
		}
		// Running containers of other tests keep nothing in this
		// namespace either: their mounts live in their own.
		for _, m := range ms {
			if strings.HasPrefix(m.Point, e.dataRoot+"/") || strings.HasPrefix(m.Point, e.execRoot+"/rootfs-view-") {
				t.Errorf("mount left behind: %s (%s)", m.Point, m.FSType)
			}
		}
	})

	t.Run("system df", func(t *testing.T) {
		name := uniqueName("vol-df")
		t.Cleanup(func() { e.docker(nil, "volume", "rm", "-f", name) })
		e.ok(t, "run", "--rm", "-v", name+":/d", testImage, "dd", "if=/dev/zero", "of=/d/f", "bs=1024", "count=100")
		out := e.ok(t, "system", "df", "-v", "--format", "{{json .}}")
		var du struct {
			Images  []map[string]any
			Volumes []struct {
				Name  string
				Size  string
				Links string
			}
		}
		if err := json.Unmarshal([]byte(out), &du); err != nil {
			t.Fatalf("system df -v: %v: %s", err, out)
		}
		found := false
		for _, v := range du.Volumes {
			if v.Name == name {
				found = true
				if v.Size != "102.4kB" || v.Links != "0" {
					t.Errorf("df volume %+v", v)
				}
			}
		}
		if !found || len(du.Images) == 0 {
			t.Errorf("system df -v: %s", out)
		}
	})
}

func boolWord(b bool) string {
	if b {
		return "rw"
	}
	return "ro"
}

// TestVolumesPersistAndSharedPaths runs its own engine with
// --shared-paths: bind sources outside them get the "Mounts denied"
// error; volumes and their references survive an engine restart.
func TestVolumesPersistAndSharedPaths(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	share := t.TempDir()
	root := filepath.Join(workDir, "volrestart")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &engine{
		root: root, dataRoot: filepath.Join(root, "data"), execRoot: filepath.Join(root, "exec"),
		sock: filepath.Join(root, "docker.sock"), logPath: filepath.Join(root, "engine.log"), cliConfig: filepath.Join(root, "cli"),
		extraArgs: []string{"--shared-paths", share},
	}
	if err := os.MkdirAll(e.cliConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	defer e.cleanup()
	defer func() { _ = e.stop() }()
	e.watch(t)
	if r := e.docker(nil, "load", "-i", imageTar); r.code != 0 {
		t.Fatalf("%v", r)
	}

	e.ok(t, "run", "--rm", "-v", share+":/s", testImage, "true")
	outside := t.TempDir()
	code, r := e.code("run", "--rm", "-v", outside+":/s", testImage, "true")
	if code == 0 || !strings.Contains(r.stderr, "Mounts denied: \nThe path "+outside+" is not shared from the host and is not known to Berth.") {
		t.Errorf("bind outside the shared paths: %v", r)
	}

	// The engine's own socket is not in a shared folder, yet allowed.
	if out := e.ok(t, "run", "--rm", "-v", e.sock+":/var/run/docker.sock", testImage, "sh", "-c", "test -S /var/run/docker.sock && echo socket"); out != "socket" {
		t.Errorf("engine socket bind: %q", out)
	}

	e.ok(t, "volume", "create", "--label", "keep=1", "kept")
	id := e.ok(t, "create", "-v", "kept:/data", testImage, "true")
	e.ok(t, "run", "--rm", "-v", "kept:/data", testImage, "sh", "-c", "echo persisted > /data/f")
	if err := e.stop(); err != nil {
		t.Fatalf("stop engine: %v", err)
	}
	if err := e.start(); err != nil {
		t.Fatalf("start engine again: %v", err)
	}
	if v := e.volumeInspect(t, "kept"); v.Labels["keep"] != "1" {
		t.Errorf("labels after restart: %v", v.Labels)
	}
	if code, r := e.code("volume", "rm", "kept"); code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Errorf("reference lost over the restart: %v", r)
	}
	if out := e.ok(t, "run", "--rm", "-v", "kept:/data", testImage, "cat", "/data/f"); out != "persisted" {
		t.Errorf("data after restart %q", out)
	}
	e.ok(t, "rm", id)
	e.ok(t, "volume", "rm", "kept")
}
