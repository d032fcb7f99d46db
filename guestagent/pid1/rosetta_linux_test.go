package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRegisterBinfmt registers a handler with this machine's binfmt_misc
// under a name of its own, with a magic no file has (at an offset past any
// real format's header) and /bin/true as the interpreter, checks what the
// kernel shows, and removes it.
func TestRegisterBinfmt(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("registering with binfmt_misc needs root")
	}
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skipf("no /bin/true to stand in as the interpreter: %v", err)
	}
	dir := BinfmtMiscDir
	var st unix.Statfs_t
	mounted := unix.Statfs(dir, &st) == nil && st.Type == binfmtMiscMagic
	if !mounted {
		if err := mountBinfmtMisc(dir); err != nil {
			t.Skipf("binfmt_misc cannot be mounted here: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	}
	name := fmt.Sprintf("berth-test-%d", os.Getpid())
	e := binfmtEntry{
		Name:        name,
		Offset:      96,
		Magic:       []byte(fmt.Sprintf("\x00berth-test-%08d", os.Getpid())),
		Interpreter: "/bin/true",
		Flags:       "CF",
	}
	e.Mask = make([]byte, len(e.Magic))
	for i := range e.Mask {
		e.Mask[i] = 0xff
	}
	if err := registerBinfmt(dir, e); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(dir, name)
	t.Cleanup(func() {
		if err := unregisterBinfmt(dir, name); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(entry); err == nil {
			t.Errorf("%s is still registered", entry)
		}
	})
	b, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"enabled\n", "interpreter /bin/true\n", "flags: OCF\n", "offset 96\n",
		fmt.Sprintf("magic %x\n", e.Magic), fmt.Sprintf("mask %x\n", e.Mask)} {
		if !strings.Contains(got, want) {
			t.Errorf("%s shows\n%s\nwithout %q", entry, got, want)
		}
	}
	// Registering again replaces the entry.
	if err := registerBinfmt(dir, e); err != nil {
		t.Fatalf("register again: %v", err)
	}
}
