package ptxsim

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// Generic-address windows of the shared, local and kernel-parameter spaces
// (cvta; a __grid_constant__ parameter's address, such as a TMA tensor
// map's). Real user-space addresses never reach this high.
const (
	sharedWindow = uint64(0xFFFE) << 48
	localWindow  = uint64(0xFFFD) << 48
	paramWindow  = uint64(0xFFFC) << 48
	windowMask   = uint64(0xFFFF) << 48
)

// State spaces of memory instructions.
const (
	spGlobal = iota
	spShared
	spLocal
	spKParam
	spTParam
	spGeneric
)

var spaceNames = [...]string{"global", "shared", "local", "param", "param", "generic"}

// memCache remembers the block's last few global allocations (a kernel
// typically streams a handful of buffers).
type memCache struct {
	base uint64
	mem  []byte
}

const cacheWays = 8

// Access kinds, for the shared-memory racecheck.
const (
	accRead = iota
	accWrite
	accAtomic // atomics never race
	accAsync  // a cp.async destination: checked when the copy lands
)

// mem returns the n bytes at addr in the given space, or nil after
// recording a fault.
func (t *thread) mem(in *inst, space int, addr uint64, n int, acc int) []byte {
	if addr&uint64(n-1) != 0 {
		t.fault(in, FaultMisaligned, addr, n, spaceNames[space], fmt.Sprintf("address not aligned to %d bytes", n))
		return nil
	}
	switch space {
	case spGlobal:
		cs := &t.blk.cache
		for i := range cs {
			c := &cs[i]
			off := addr - c.base
			if off < uint64(len(c.mem)) && uint64(len(c.mem))-off >= uint64(n) {
				return c.mem[off : off+uint64(n)]
			}
		}
		return t.globalSlow(in, addr, n)
	case spShared:
		s := t.blk.shared
		if addr < uint64(len(s)) && uint64(len(s))-addr >= uint64(n) {
			if t.blk.race != nil && acc <= accWrite && !t.raceCheck(in, addr, n, acc == accWrite) {
				return nil
			}
			if t.blk.wgOut > 0 && (acc == accWrite || acc == accAsync) && !t.wgmmaWriteCheck(in, addr, n) {
				return nil
			}
			return s[addr : addr+uint64(n)]
		}
		t.fault(in, FaultIllegalAddress, addr, n, "shared", fmt.Sprintf("outside the block's %d bytes of shared memory", len(s)))
		return nil
	case spLocal:
		s := t.local
		if addr < uint64(len(s)) && uint64(len(s))-addr >= uint64(n) {
			return s[addr : addr+uint64(n)]
		}
		t.fault(in, FaultIllegalAddress, addr, n, "local", fmt.Sprintf("outside the thread's %d bytes of local memory", len(s)))
		return nil
	case spKParam:
		s := t.blk.l.kparams
		if addr < uint64(len(s)) && uint64(len(s))-addr >= uint64(n) {
			return s[addr : addr+uint64(n)]
		}
		t.fault(in, FaultIllegalAddress, addr, n, "param", "outside the kernel parameters")
		return nil
	case spTParam:
		s := t.pmem
		if addr < uint64(len(s)) && uint64(len(s))-addr >= uint64(n) {
			return s[addr : addr+uint64(n)]
		}
		t.fault(in, FaultIllegalAddress, addr, n, "param", "outside the call parameters")
		return nil
	}
	switch addr & windowMask {
	case sharedWindow:
		return t.mem(in, spShared, addr-sharedWindow, n, acc)
	case localWindow:
		return t.mem(in, spLocal, addr-localWindow, n, acc)
	case paramWindow:
		if acc != accRead {
			t.fault(in, FaultTrap, addr, n, "param", "write to a kernel parameter through a generic address (kernel parameters are read-only)")
			return nil
		}
		return t.mem(in, spKParam, addr-paramWindow, n, acc)
	}
	return t.mem(in, spGlobal, addr, n, acc)
}

func (t *thread) globalSlow(in *inst, addr uint64, n int) []byte {
	b := t.blk
	for _, v := range b.k.mod.globals {
		if off := addr - v.addr; off < uint64(len(v.mem)) && uint64(len(v.mem))-off >= uint64(n) {
			b.remember(v.addr, v.mem)
			return v.mem[off : off+uint64(n)]
		}
	}
	if m := b.l.cfg.Memory; m != nil {
		if base, mem, ok := m.Find(addr); ok {
			if off := addr - base; off < uint64(len(mem)) && uint64(len(mem))-off >= uint64(n) {
				b.remember(base, mem)
				return mem[off : off+uint64(n)]
			}
			t.fault(in, FaultIllegalAddress, addr, n, "global",
				fmt.Sprintf("past the end of the %d-byte allocation at 0x%x", len(mem), base))
			return nil
		}
	}
	t.fault(in, FaultIllegalAddress, addr, n, "global", "not inside any live allocation")
	return nil
}

// remember puts an allocation in the cache, evicting round-robin.
func (b *block) remember(base uint64, mem []byte) {
	b.cache[b.cacheNext] = memCache{base: base, mem: mem}
	b.cacheNext = (b.cacheNext + 1) % cacheWays
}

func load(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func store(b []byte, size int, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// ld/st: in.a base slot, in.off offset, in.n element size, in.m space,
// in.v the vector registers (one for scalars), in.w the width to
// sign-extend from (0: zero-extend), in.mask the destination mask.
func opLd(t *thread, in *inst) {
	r := t.r
	n := int(in.n)
	b := t.mem(in, int(in.m), r[in.a]+in.off, n*len(in.v), accRead)
	if b == nil {
		return
	}
	for i, s := range in.v {
		v := load(b[i*n:], n)
		if in.w != 0 {
			v = uint64(sx(v, in.w)) & in.mask
		}
		r[s] = v
	}
	r[slotSink] = 0
}

func opSt(t *thread, in *inst) {
	r := t.r
	n := int(in.n)
	b := t.mem(in, int(in.m), r[in.a]+in.off, n*len(in.v), accWrite)
	if b == nil {
		return
	}
	for i, s := range in.v {
		store(b[i*n:], n, r[s])
	}
}

// Fast paths: scalar 4-byte shared and global loads and stores.
func opLdShared32(t *thread, in *inst) {
	addr := t.r[in.a] + in.off
	s := t.blk.shared
	if addr&3 == 0 && addr < uint64(len(s)) && uint64(len(s))-addr >= 4 && t.blk.race == nil {
		t.r[in.d] = uint64(binary.LittleEndian.Uint32(s[addr:]))
		return
	}
	if b := t.mem(in, spShared, addr, 4, accRead); b != nil {
		t.r[in.d] = uint64(binary.LittleEndian.Uint32(b))
	}
}

func opLdGlobal32(t *thread, in *inst) {
	if b := t.mem(in, spGlobal, t.r[in.a]+in.off, 4, accRead); b != nil {
		t.r[in.d] = uint64(binary.LittleEndian.Uint32(b))
	}
}

func opStGlobal32(t *thread, in *inst) {
	if b := t.mem(in, spGlobal, t.r[in.a]+in.off, 4, accWrite); b != nil {
		binary.LittleEndian.PutUint32(b, uint32(t.r[in.d]))
	}
}

// cvta: in.off is the window added (to generic) or removed (to a space).
func opCvtaTo(t *thread, in *inst)   { r := t.r; r[in.d] = (r[in.a] - in.off) & in.mask }
func opCvtaFrom(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a]&in.mask + in.off }

// Atomic operations (in.m: op code). Global memory is shared between the
// goroutines running blocks, so global atomics use sync/atomic; shared
// memory belongs to one goroutine.
const (
	atomAdd = iota
	atomMin
	atomMax
	atomExch
	atomCas
	atomAnd
	atomOr
	atomXor
	atomInc
	atomDec
)

// atomApply computes the new value of an atomic read-modify-write.
func atomApply(op int, typ byte, w uint8, old, b, c uint64) uint64 {
	switch op {
	case atomAdd:
		switch {
		case typ == 'f' && w == 32:
			return uint64(math.Float32bits(math.Float32frombits(uint32(old)) + math.Float32frombits(uint32(b))))
		case typ == 'f':
			return math.Float64bits(math.Float64frombits(old) + math.Float64frombits(b))
		}
		return old + b
	case atomMin, atomMax:
		less := false
		switch typ {
		case 's':
			less = sx(b, w) < sx(old, w)
		case 'f':
			if w == 32 {
				less = math.Float32frombits(uint32(b)) < math.Float32frombits(uint32(old))
			} else {
				less = math.Float64frombits(b) < math.Float64frombits(old)
			}
		default:
			less = b < old
		}
		if less == (op == atomMin) && b != old {
			return b
		}
		return old
	case atomExch:
		return b
	case atomCas:
		if old == b {
			return c
		}
		return old
	case atomAnd:
		return old & b
	case atomOr:
		return old | b
	case atomXor:
		return old ^ b
	case atomInc:
		if old >= b {
			return 0
		}
		return old + 1
	case atomDec:
		if old == 0 || old > b {
			return b
		}
		return old - 1
	}
	return old
}

// opAtom: in.d result (slotSink for red), in.a address base, in.b and in.c
// operands, in.n size, in.m space, in.e op, in.x[0] type letter.
func opAtom(t *thread, in *inst) {
	r := t.r
	n := int(in.n)
	b := t.mem(in, int(in.m), r[in.a]+in.off, n, accAtomic)
	if b == nil {
		return
	}
	typ := in.tk
	op := int(in.e)
	m := typeMaskBits(n)
	bv, cv := r[in.b]&m, r[in.c]&m
	var old uint64
	if in.m == spShared || in.m == spLocal {
		old = load(b, n)
		store(b, n, atomApply(op, typ, uint8(n*8), old, bv, cv)&m)
	} else if n == 4 {
		p := (*uint32)(unsafe.Pointer(&b[0]))
		for {
			o := atomic.LoadUint32(p)
			nv := uint32(atomApply(op, typ, 32, uint64(o), bv, cv))
			if atomic.CompareAndSwapUint32(p, o, nv) {
				old = uint64(o)
				break
			}
		}
	} else if n == 8 {
		p := (*uint64)(unsafe.Pointer(&b[0]))
		for {
			o := atomic.LoadUint64(p)
			nv := atomApply(op, typ, 64, o, bv, cv)
			if atomic.CompareAndSwapUint64(p, o, nv) {
				old = o
				break
			}
		}
	} else {
		t.fault(in, FaultTrap, r[in.a]+in.off, n, "global", "atomics of this size are not simulated")
		return
	}
	r[in.d] = old
	r[slotSink] = 0
}

func typeMaskBits(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return uint64(1)<<(8*n) - 1
}
