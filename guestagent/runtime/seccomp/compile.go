package seccomp

import (
	"fmt"
	"sort"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Return values of a seccomp filter (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	x32SyscallBit = 0x40000000

	// Offsets in struct seccomp_data; both supported arches are little endian.
	offNr   = 0
	offArch = 4
	offArgs = 16

	maxInsns = 4096 // BPF_MAXINSNS
)

// archSection is one architecture the program accepts.
type archSection struct {
	info     *arch.Info
	x32Allow bool // x86_64 only: also accept x32 system calls
}

// sections returns the architectures to compile for goarch, honouring the
// profile's list (empty: native only).
func sections(s *specs.LinuxSeccomp, goarch string) ([]archSection, error) {
	native, ok := ociArches[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: unsupported architecture %q", goarch)
	}
	want := map[specs.Arch]bool{native[0]: true}
	for _, a := range s.Architectures {
		want[a] = true
	}
	var out []archSection
	switch goarch {
	case "amd64":
		out = append(out, archSection{info: arch.X86_64, x32Allow: want[specs.ArchX32]})
		if want[specs.ArchX86] {
			out = append(out, archSection{info: arch.I386})
		}
	case "arm64":
		out = append(out, archSection{info: arch.AARCH64})
		if want[specs.ArchARM] {
			out = append(out, archSection{info: arch.ARM})
		}
	}
	return out, nil
}

// actionValue is the filter return value of an OCI action.
func actionValue(a specs.LinuxSeccompAction, errnoRet *uint, defErrno uint) (uint32, error) {
	switch a {
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActErrno:
		e := defErrno
		if errnoRet != nil {
			e = *errnoRet
		}
		return retErrno | uint32(e&0xffff), nil
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActTrace:
		e := defErrno
		if errnoRet != nil {
			e = *errnoRet
		}
		return retTrace | uint32(e&0xffff), nil
	case specs.ActLog:
		return retLog, nil
	}
	return 0, fmt.Errorf("seccomp: unsupported action %q", a)
}

// insn is an instruction whose conditional jump targets are positions in
// the block being assembled (resolved to relative skips by finish).
type insn struct {
	ins    bpf.Instruction
	cond   bpf.JumpTest
	k      uint32
	jt, jf int // absolute targets within the block; -1: next instruction
	isJump bool
}

type block struct{ insns []insn }

func (b *block) add(i bpf.Instruction) { b.insns = append(b.insns, insn{ins: i}) }
func (b *block) jump(cond bpf.JumpTest, k uint32, jt, jf int) {
	b.insns = append(b.insns, insn{cond: cond, k: k, jt: jt, jf: jf, isJump: true})
}
func (b *block) pos() int { return len(b.insns) }

// Labels used before their position is known.
const (
	labelFail = -2 // end of the rule block: the rule does not match
	labelPass = -3 // the next argument check
)

// finish resolves the block's labels; fail is the position after the block.
func (b *block) finish(start int, fixPass map[int]int) ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, 0, len(b.insns))
	fail := len(b.insns)
	for i, in := range b.insns {
		if !in.isJump {
			out = append(out, in.ins)
			continue
		}
		rel := func(t int) (uint8, error) {
			switch t {
			case -1:
				return 0, nil
			case labelFail:
				t = fail
			case labelPass:
				t = fixPass[i]
			}
			d := t - i - 1
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("seccomp: jump out of range in rule at %d", start)
			}
			return uint8(d), nil
		}
		jt, err := rel(in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := rel(in.jf)
		if err != nil {
			return nil, err
		}
		out = append(out, bpf.JumpIf{Cond: in.cond, Val: in.k, SkipTrue: jt, SkipFalse: jf})
	}
	return out, nil
}

// ruleBlock assembles: if nr == num and every argument condition holds,
// return ret; otherwise fall through past the block.
func ruleBlock(num uint32, args []specs.LinuxSeccompArg, ret uint32) ([]bpf.Instruction, error) {
	b := &block{}
	pass := map[int]int{}
	b.jump(bpf.JumpEqual, num, -1, labelFail)
	reloadNr := false
	for _, a := range args {
		if a.Index > 5 {
			return nil, fmt.Errorf("seccomp: argument index %d out of range", a.Index)
		}
		reloadNr = true
		lo := uint32(offArgs + 8*a.Index)
		hi := lo + 4
		vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
		first := b.pos()
		switch a.Op {
		case specs.OpEqualTo:
			b.add(bpf.LoadAbsolute{Off: hi, Size: 4})
			b.jump(bpf.JumpEqual, vhi, -1, labelFail)
			b.add(bpf.LoadAbsolute{Off: lo, Size: 4})
			b.jump(bpf.JumpEqual, vlo, -1, labelFail)
		case specs.OpNotEqual:
			b.add(bpf.LoadAbsolute{Off: hi, Size: 4})
			b.jump(bpf.JumpEqual, vhi, -1, labelPass)
			b.add(bpf.LoadAbsolute{Off: lo, Size: 4})
			b.jump(bpf.JumpEqual, vlo, labelFail, -1)
		case specs.OpMaskedEqual:
			mask, want := a.Value, a.ValueTwo
			b.add(bpf.LoadAbsolute{Off: hi, Size: 4})
			b.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(mask >> 32)})
			b.jump(bpf.JumpEqual, uint32(want>>32), -1, labelFail)
			b.add(bpf.LoadAbsolute{Off: lo, Size: 4})
			b.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(mask)})
			b.jump(bpf.JumpEqual, uint32(want), -1, labelFail)
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			b.add(bpf.LoadAbsolute{Off: hi, Size: 4})
			b.jump(bpf.JumpGreaterThan, vhi, labelPass, -1)
			b.jump(bpf.JumpEqual, vhi, -1, labelFail)
			b.add(bpf.LoadAbsolute{Off: lo, Size: 4})
			c := bpf.JumpGreaterThan
			if a.Op == specs.OpGreaterEqual {
				c = bpf.JumpGreaterOrEqual
			}
			b.jump(c, vlo, -1, labelFail)
		case specs.OpLessThan, specs.OpLessEqual:
			b.add(bpf.LoadAbsolute{Off: hi, Size: 4})
			b.jump(bpf.JumpGreaterThan, vhi, labelFail, -1)
			b.jump(bpf.JumpEqual, vhi, -1, labelPass)
			b.add(bpf.LoadAbsolute{Off: lo, Size: 4})
			if a.Op == specs.OpLessThan {
				b.jump(bpf.JumpGreaterOrEqual, vlo, labelFail, -1)
			} else {
				b.jump(bpf.JumpGreaterThan, vlo, labelFail, -1)
			}
		default:
			return nil, fmt.Errorf("seccomp: unsupported operator %q", a.Op)
		}
		for i := first; i < b.pos(); i++ {
			pass[i] = b.pos()
		}
	}
	b.add(bpf.RetConstant{Val: ret})
	if reloadNr {
		// A failed argument check leaves an argument in A: the next rule
		// compares the syscall number, so put it back.
		b.add(bpf.LoadAbsolute{Off: offNr, Size: 4})
	}
	insns, err := b.finish(0, pass)
	if err != nil {
		return nil, err
	}
	if reloadNr {
		// Rules that fail jump to the reload, not past it.
		for i, in := range insns {
			if j, ok := in.(bpf.JumpIf); ok {
				fix := func(skip uint8) uint8 {
					if i+1+int(skip) == len(insns) {
						return skip - 1
					}
					return skip
				}
				j.SkipTrue, j.SkipFalse = fix(j.SkipTrue), fix(j.SkipFalse)
				insns[i] = j
			}
		}
		// The first jump (number mismatch) keeps skipping the reload too:
		// A still holds the number there.
		if j, ok := insns[0].(bpf.JumpIf); ok {
			j.SkipFalse = uint8(len(insns) - 1)
			insns[0] = j
		}
	}
	return insns, nil
}

// Compile turns s into a classic BPF program for goarch ("amd64" or
// "arm64"), with a section for each architecture s lists that goarch can run
// (x86 and x32 on amd64, arm on arm64). Syscall names unknown on an
// architecture are skipped, as libseccomp does. A process of any other
// architecture is killed.
func Compile(s *specs.LinuxSeccomp, goarch string) ([]bpf.RawInstruction, error) {
	if s == nil {
		return nil, fmt.Errorf("seccomp: no profile")
	}
	defErrno := uint(1) // EPERM
	if s.DefaultErrnoRet != nil {
		defErrno = *s.DefaultErrnoRet
	}
	defRet, err := actionValue(s.DefaultAction, nil, defErrno)
	if err != nil {
		return nil, fmt.Errorf("seccomp: default action: %w", err)
	}
	secs, err := sections(s, goarch)
	if err != nil {
		return nil, err
	}
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: offArch, Size: 4}}
	for _, sec := range secs {
		var body []bpf.Instruction
		body = append(body, bpf.LoadAbsolute{Off: offNr, Size: 4})
		// x32 system calls come under the x86_64 audit arch with bit 30
		// set in the number: with x32 in the profile they are looked up in
		// the x32 table, else they fail with ENOSYS.
		tables := []*arch.Info{sec.info}
		if sec.info == arch.X86_64 {
			if sec.x32Allow {
				tables = append(tables, arch.X32)
			} else {
				body = append(body,
					bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32SyscallBit, SkipTrue: 0, SkipFalse: 1},
					bpf.RetConstant{Val: retErrno | 38})
			}
		}
		// Rules with argument conditions are checked one by one, in
		// order; the unconditional ones go into a binary search tree over
		// the syscall number. The first rule that names a number decides
		// for it, as when every rule is checked in order.
		decided := map[uint32]bool{}
		var uncond []treeEntry
		for _, sc := range s.Syscalls {
			ret, err := actionValue(sc.Action, sc.ErrnoRet, defErrno)
			if err != nil {
				return nil, fmt.Errorf("seccomp: syscalls %v: %w", sc.Names, err)
			}
			for _, name := range sc.Names {
				for _, table := range tables {
					n, ok := table.SyscallNames[name]
					if !ok {
						continue
					}
					num := uint32(n) | uint32(table.SeccompMask)
					if decided[num] {
						continue
					}
					if len(sc.Args) == 0 {
						decided[num] = true
						if ret != defRet {
							uncond = append(uncond, treeEntry{num, num, ret})
						}
						continue
					}
					insns, err := ruleBlock(num, sc.Args, ret)
					if err != nil {
						return nil, fmt.Errorf("seccomp: %s: %w", name, err)
					}
					body = append(body, insns...)
				}
			}
		}
		body = append(body, searchTree(mergeRanges(uncond), defRet)...)
		// if arch == this: run body; else jump over it.
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(sec.info.ID), SkipTrue: 1},
			bpf.Jump{Skip: uint32(len(body))})
		prog = append(prog, body...)
	}
	prog = append(prog, bpf.RetConstant{Val: retKillProcess})
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: program has %d instructions, more than %d", len(prog), maxInsns)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	return raw, nil
}

// treeEntry is a range of syscall numbers and what the filter returns for
// them.
type treeEntry struct {
	lo, hi uint32
	ret    uint32
}

// mergeRanges sorts single-number entries and joins neighbours with the
// same value: the allowlist is mostly long runs of numbers.
func mergeRanges(es []treeEntry) []treeEntry {
	sort.Slice(es, func(i, j int) bool { return es[i].lo < es[j].lo })
	var out []treeEntry
	for _, e := range es {
		if n := len(out); n > 0 && out[n-1].hi+1 == e.lo && out[n-1].ret == e.ret {
			out[n-1].hi = e.hi
			continue
		}
		out = append(out, e)
	}
	return out
}

// searchTree returns a binary search over the sorted, disjoint ranges es,
// with the syscall number in A, that returns each range's value and def for
// any other number: O(log n) comparisons per call instead of one per rule.
func searchTree(es []treeEntry, def uint32) []bpf.Instruction {
	if len(es) <= 4 {
		var out []bpf.Instruction
		for _, e := range es {
			if e.lo == e.hi {
				out = append(out,
					bpf.JumpIf{Cond: bpf.JumpEqual, Val: e.lo, SkipTrue: 0, SkipFalse: 1},
					bpf.RetConstant{Val: e.ret})
				continue
			}
			out = append(out,
				bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: e.hi, SkipTrue: 2, SkipFalse: 0},
				bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: e.lo, SkipTrue: 0, SkipFalse: 1},
				bpf.RetConstant{Val: e.ret})
		}
		return append(out, bpf.RetConstant{Val: def})
	}
	mid := len(es) / 2
	left := searchTree(es[:mid], def)
	right := searchTree(es[mid:], def)
	// A >= es[mid].lo: the unconditional jump (32-bit offset) to the right
	// half; otherwise skip it into the left half.
	out := []bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: es[mid].lo, SkipTrue: 0, SkipFalse: 1},
		bpf.Jump{Skip: uint32(len(left))},
	}
	out = append(out, left...)
	return append(out, right...)
}
