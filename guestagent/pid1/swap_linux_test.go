package pid1

import (
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSwapHeader(t *testing.T) {
	b, err := SwapHeader(64<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[4096-10:]) != "SWAPSPACE2" || binary.LittleEndian.Uint32(b[1024:]) != 1 || binary.LittleEndian.Uint32(b[1028:]) != 64<<20/4096-1 {
		t.Fatalf("header: version %d, last page %d, signature %q", binary.LittleEndian.Uint32(b[1024:]), binary.LittleEndian.Uint32(b[1028:]), b[4096-10:])
	}
	if _, err := SwapHeader(4096, 4096); err == nil {
		t.Error("a one-page swap area accepted")
	}
	if _, err := SwapHeader(1<<20, 1000); err == nil {
		t.Error("a page size of 1000 accepted")
	}
}

// TestMakeSwapFile: util-linux reads the file as a swap area with its label.
func TestMakeSwapFile(t *testing.T) {
	tool, err := exec.LookPath("swaplabel")
	if err != nil {
		t.Skipf("swaplabel (util-linux) not installed: %v", err)
	}
	path := filepath.Join(t.TempDir(), "swapfile")
	if err := makeSwapFile(path, 16<<20, 4096); err != nil {
		t.Skipf("cannot allocate a file here: %v", err)
	}
	out, err := exec.Command(tool, path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LABEL: berth-swap") {
		t.Fatalf("swaplabel: %v\n%s", err, out)
	}
}
