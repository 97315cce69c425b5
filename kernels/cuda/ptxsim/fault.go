package ptxsim

import "fmt"

// FaultKind is what went wrong in a launch.
type FaultKind int

const (
	FaultIllegalAddress FaultKind = iota // access outside any allocation (CUDA_ERROR_ILLEGAL_ADDRESS)
	FaultMisaligned                      // access not aligned to its size (CUDA_ERROR_MISALIGNED_ADDRESS)
	FaultDeadlock                        // no thread can progress
	FaultBudget                          // instruction budget exceeded
	FaultTrap                            // trap, or an instruction the simulator cannot execute
	FaultRace                            // shared-memory hazard between warps (Config.Racecheck)
)

func (k FaultKind) String() string {
	switch k {
	case FaultIllegalAddress:
		return "illegal address"
	case FaultMisaligned:
		return "misaligned address"
	case FaultDeadlock:
		return "deadlock"
	case FaultBudget:
		return "instruction budget exceeded"
	case FaultRace:
		return "shared-memory race"
	}
	return "trap"
}

// Fault is a failed launch, located like compute-sanitizer does: kernel, PTX
// line, block and thread, and for memory faults the address.
type Fault struct {
	Kind   FaultKind
	Module string
	Kernel string
	Line   int    // PTX source line, 0 if none
	Op     string // the instruction's opcode
	Block  [3]int
	Thread [3]int // {-1,-1,-1} when the fault is the block's, not one thread's
	Addr   uint64
	Size   int
	Space  string // state space of a memory fault
	Msg    string
}

func (f *Fault) Error() string {
	loc := fmt.Sprintf("%s:%d", f.Module, f.Line)
	who := fmt.Sprintf("block (%d,%d,%d)", f.Block[0], f.Block[1], f.Block[2])
	if f.Thread[0] >= 0 {
		who += fmt.Sprintf(" thread (%d,%d,%d)", f.Thread[0], f.Thread[1], f.Thread[2])
	}
	s := fmt.Sprintf("ptxsim: kernel %s: %s at %s", f.Kernel, f.Kind, loc)
	if f.Op != "" {
		s += " (" + f.Op + ")"
	}
	s += ", " + who
	if f.Kind == FaultIllegalAddress || f.Kind == FaultMisaligned || f.Kind == FaultRace {
		s += fmt.Sprintf(": %d-byte %s access at 0x%x", f.Size, f.Space, f.Addr)
	}
	if f.Msg != "" {
		s += ": " + f.Msg
	}
	return s
}

// newFault records the block's first fault. t may be nil (a block-wide
// fault); in may be nil.
func (b *block) newFault(kind FaultKind, t *thread, in *inst, addr uint64, size int, space, msg string) *Fault {
	f := &Fault{Kind: kind, Module: b.k.mod.Name, Kernel: b.k.Name, Block: b.ctaid, Thread: [3]int{-1, -1, -1},
		Addr: addr, Size: size, Space: space, Msg: msg}
	if in != nil {
		f.Line, f.Op = int(in.line), in.op
	}
	if t != nil {
		f.Thread = t.tid
		t.state = faulted
	}
	if b.fault == nil {
		b.fault = f
	}
	return b.fault
}

// fault stops the thread with a fault at its current instruction.
func (t *thread) fault(in *inst, kind FaultKind, addr uint64, size int, space, msg string) {
	t.blk.newFault(kind, t, in, addr, size, space, msg)
}
