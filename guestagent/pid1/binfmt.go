package pid1

import (
	"fmt"
	"path"
	"strings"
)

// binfmtEntry is one binfmt_misc handler of the magic kind ("M"): files
// whose bytes at Offset, masked with Mask, equal Magic run under
// Interpreter (Documentation/admin-guide/binfmt-misc.rst).
type binfmtEntry struct {
	Name        string
	Offset      int
	Magic, Mask []byte // Mask empty, or as long as Magic
	Interpreter string
	// Flags are the kernel's letters: P preserve argv[0], O open the binary
	// for the interpreter, C credentials from the binary (implies O), F fix
	// the interpreter at registration, so that it runs in any mount
	// namespace (a container's root need not hold it).
	Flags string
}

// binfmtMaxRegistration is the kernel's limit on what one write to
// register may carry.
const binfmtMaxRegistration = 1920

// x86-64 ELF executables and shared objects: class 64-bit, little-endian,
// ELF version 1, any OS ABI, e_type ET_EXEC or ET_DYN (the mask drops the
// low bit of e_type's first byte), e_machine EM_X86_64 (0x3e).
var (
	x8664ELFMagic = []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00")
	x8664ELFMask  = []byte("\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")
)

// rosettaEntry is the handler that runs x86-64 binaries under Rosetta at
// interpreter. C: a set-uid x86-64 binary keeps its credentials; F: the
// interpreter is opened now, so binaries in containers (whose mount
// namespace has no /run/rosetta) run too.
func rosettaEntry(interpreter string) binfmtEntry {
	return binfmtEntry{Name: "rosetta", Magic: x8664ELFMagic, Mask: x8664ELFMask, Interpreter: interpreter, Flags: "CF"}
}

// registration is the line written to binfmt_misc's register file:
// ":name:M:offset:magic:mask:interpreter:flags", magic and mask as \x
// escapes (so neither holds the ':' separator nor a NUL).
func (e binfmtEntry) registration() (string, error) {
	switch {
	case e.Name == "" || e.Name == "." || e.Name == ".." || e.Name == "register" || e.Name == "status" ||
		strings.ContainsAny(e.Name, "/:\n\x00") || len(e.Name) > 64:
		return "", fmt.Errorf("binfmt_misc entry name %q", e.Name)
	case len(e.Magic) == 0 || len(e.Magic) > 128:
		return "", fmt.Errorf("binfmt_misc entry %s: magic of %d bytes (1 to 128)", e.Name, len(e.Magic))
	case len(e.Mask) != 0 && len(e.Mask) != len(e.Magic):
		return "", fmt.Errorf("binfmt_misc entry %s: mask of %d bytes for a magic of %d", e.Name, len(e.Mask), len(e.Magic))
	case e.Offset < 0 || e.Offset+len(e.Magic) > 128:
		return "", fmt.Errorf("binfmt_misc entry %s: offset %d past the 128 bytes the kernel reads", e.Name, e.Offset)
	case !path.IsAbs(e.Interpreter) || strings.ContainsAny(e.Interpreter, ":\n\x00"):
		return "", fmt.Errorf("binfmt_misc entry %s: interpreter %q is not an absolute path without ':'", e.Name, e.Interpreter)
	}
	for _, f := range e.Flags {
		if !strings.ContainsRune("POCF", f) {
			return "", fmt.Errorf("binfmt_misc entry %s: flag %q (P, O, C, F)", e.Name, f)
		}
	}
	var b strings.Builder
	hex := func(bs []byte) {
		for _, c := range bs {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	fmt.Fprintf(&b, ":%s:M:%d:", e.Name, e.Offset)
	hex(e.Magic)
	b.WriteByte(':')
	hex(e.Mask)
	fmt.Fprintf(&b, ":%s:%s", e.Interpreter, e.Flags)
	if b.Len() > binfmtMaxRegistration {
		return "", fmt.Errorf("binfmt_misc entry %s: registration of %d bytes (at most %d)", e.Name, b.Len(), binfmtMaxRegistration)
	}
	return b.String(), nil
}
