//go:build (amd64 || arm64) && !purego

package asm

import "sync"

// vecBlocks holds assembly routines that process only the first
// len - len%w elements of their slices (whole vectors); withTails finishes
// the remaining < w elements in Go. This keeps every tail in one place
// instead of three assembly dialects. The exact kernels (add, dot, max...)
// finish with the reference loops; the transcendental ones (exp, silu)
// copy the tail into a w-wide padded buffer and run the vector kernel on
// it, because the reference exp costs ~20× the vector one per element and
// short ragged rows (causal attention rows, 1..S long) are mostly tail. So
// a tail element gets exactly the body's result for the same input.
type vecBlocks struct {
	w           int
	dot         func(x, y []float32) float32
	axpy        func(alpha float32, x, y []float32)
	scaleTo     func(dst, x []float32, alpha float32)
	add         func(dst, x, y []float32)
	mul         func(dst, x, y []float32)
	sum         func(x []float32) float32
	max         func(x []float32) float32
	expShiftSum func(dst, x []float32, shift float32) float32
	expSum      func(x []float32, shift float32) float32
	silu        func(dst, x []float32)
	swiglu      func(dst, gate, up []float32)
	swigluBwd   func(dg, du, dy, gate, up []float32) // nil: the reference
	softcap     func(dst, x []float32, c float32)    // nil: the reference (and below)
	softcapBwd  func(dx, dy, y []float32, c float32)
	geglu       func(dst, gate, up []float32)
	gegluBwd    func(dg, du, dy, gate, up []float32)
	subShift    func(dst, x []float32, a, b float32)
	scaleMul    func(dst, x, w []float32, s float32)
	bf16ToF32   func(dst []float32, src []uint16)
	f32ToBF16   func(dst []uint16, src []float32)
}

func (b *vecBlocks) withTails() *vecImpl {
	w := b.w
	body := func(n int) int { return n - n%w }
	return &vecImpl{
		dot: func(x, y []float32) float32 {
			n := body(len(x))
			return b.dot(x[:n], y[:n]) + DotRef(x[n:], y[n:])
		},
		axpy: func(alpha float32, x, y []float32) {
			n := body(len(x))
			b.axpy(alpha, x[:n], y[:n])
			AxpyRef(alpha, x[n:], y[n:])
		},
		scaleTo: func(dst, x []float32, alpha float32) {
			n := body(len(x))
			b.scaleTo(dst[:n], x[:n], alpha)
			scaleToRef(dst[n:], x[n:], alpha)
		},
		add: func(dst, x, y []float32) {
			n := body(len(x))
			b.add(dst[:n], x[:n], y[:n])
			AddRef(dst[n:], x[n:], y[n:])
		},
		mul: func(dst, x, y []float32) {
			n := body(len(x))
			b.mul(dst[:n], x[:n], y[:n])
			MulRef(dst[n:], x[n:], y[n:])
		},
		sum: func(x []float32) float32 {
			n := body(len(x))
			return b.sum(x[:n]) + SumRef(x[n:])
		},
		max: func(x []float32) float32 {
			n := body(len(x))
			// the builtin max returns NaN if either side is NaN.
			return max(b.max(x[:n]), MaxRef(x[n:]))
		},
		expShiftSum: func(dst, x []float32, shift float32) float32 {
			n := body(len(x))
			s := b.expShiftSum(dst[:n], x[:n], shift)
			if n == len(x) {
				return s
			}
			// Padding with shift gives exp(0) = 1 in the unused lanes: a
			// normal value, off the kernel's slow paths, and not summed.
			t := getTail()
			tail := padTail(&t[0], w, x[n:], shift)
			b.expShiftSum(tail, tail, shift)
			s += SumRef(unpadTail(dst[n:len(x)], tail))
			tailPool.Put(t)
			return s
		},
		expSum: func(x []float32, shift float32) float32 {
			n := body(len(x))
			s := b.expSum(x[:n], shift)
			if n == len(x) {
				return s
			}
			t := getTail()
			tail := padTail(&t[0], w, x[n:], shift)
			b.expShiftSum(tail, tail, shift)
			s += SumRef(tail[:len(x)-n])
			tailPool.Put(t)
			return s
		},
		silu: func(dst, x []float32) {
			n := body(len(x))
			b.silu(dst[:n], x[:n])
			if n < len(x) {
				t := getTail()
				tail := padTail(&t[0], w, x[n:], 0)
				b.silu(tail, tail)
				unpadTail(dst[n:len(x)], tail)
				tailPool.Put(t)
			}
		},
		swiglu: func(dst, gate, up []float32) {
			n := body(len(gate))
			b.swiglu(dst[:n], gate[:n], up[:n])
			if n < len(gate) {
				t := getTail()
				g := padTail(&t[0], w, gate[n:], 0)
				u := padTail(&t[1], w, up[n:len(gate)], 0)
				b.swiglu(g, g, u)
				unpadTail(dst[n:len(gate)], g)
				tailPool.Put(t)
			}
		},
		swigluBwd: func(dg, du, dy, gate, up []float32) {
			if b.swigluBwd == nil {
				SwiGLUBackwardRef(dg, du, dy, gate, up)
				return
			}
			n := body(len(dy))
			b.swigluBwd(dg[:n], du[:n], dy[:n], gate[:n], up[:n])
			if n < len(dy) {
				t := getTail()
				m := len(dy)
				b.swigluBwd(t[3][:w], t[4][:w], padTail(&t[0], w, dy[n:], 0), padTail(&t[1], w, gate[n:m], 0), padTail(&t[2], w, up[n:m], 0))
				unpadTail(dg[n:m], t[3][:w])
				unpadTail(du[n:m], t[4][:w])
				tailPool.Put(t)
			}
		},
		softcap: func(dst, x []float32, c float32) {
			if b.softcap == nil {
				SoftcapRef(dst, x, c)
				return
			}
			n := body(len(x))
			b.softcap(dst[:n], x[:n], c)
			if n < len(x) {
				t := getTail()
				tail := padTail(&t[0], w, x[n:], 0)
				b.softcap(tail, tail, c)
				unpadTail(dst[n:len(x)], tail)
				tailPool.Put(t)
			}
		},
		softcapBwd: func(dx, dy, y []float32, c float32) {
			if b.softcapBwd == nil {
				SoftcapBackwardRef(dx, dy, y, c)
				return
			}
			// Exact: the reference's roundings, so the tail needs no padding.
			n := body(len(y))
			b.softcapBwd(dx[:n], dy[:n], y[:n], c)
			SoftcapBackwardRef(dx[n:len(y)], dy[n:len(y)], y[n:], c)
		},
		geglu: func(dst, gate, up []float32) {
			if b.geglu == nil {
				GeGLURef(dst, gate, up)
				return
			}
			n := body(len(gate))
			b.geglu(dst[:n], gate[:n], up[:n])
			if n < len(gate) {
				t := getTail()
				g := padTail(&t[0], w, gate[n:], 0)
				u := padTail(&t[1], w, up[n:len(gate)], 0)
				b.geglu(g, g, u)
				unpadTail(dst[n:len(gate)], g)
				tailPool.Put(t)
			}
		},
		gegluBwd: func(dg, du, dy, gate, up []float32) {
			if b.gegluBwd == nil {
				GeGLUBackwardRef(dg, du, dy, gate, up)
				return
			}
			n := body(len(dy))
			b.gegluBwd(dg[:n], du[:n], dy[:n], gate[:n], up[:n])
			if n < len(dy) {
				t := getTail()
				m := len(dy)
				b.gegluBwd(t[3][:w], t[4][:w], padTail(&t[0], w, dy[n:], 0), padTail(&t[1], w, gate[n:m], 0), padTail(&t[2], w, up[n:m], 0))
				unpadTail(dg[n:m], t[3][:w])
				unpadTail(du[n:m], t[4][:w])
				tailPool.Put(t)
			}
		},
		subShift: func(dst, x []float32, a, c float32) {
			n := body(len(x))
			b.subShift(dst[:n], x[:n], a, c)
			subShiftRef(dst[n:], x[n:], a, c)
		},
		scaleMul: func(dst, x, wt []float32, s float32) {
			n := body(len(x))
			b.scaleMul(dst[:n], x[:n], wt[:n], s)
			scaleMulRef(dst[n:], x[n:], wt[n:], s)
		},
		bf16ToF32: func(dst []float32, src []uint16) {
			n := body(len(src))
			b.bf16ToF32(dst[:n], src[:n])
			BF16ToF32Ref(dst[n:], src[n:])
		},
		f32ToBF16: func(dst []uint16, src []float32) {
			n := body(len(src))
			b.f32ToBF16(dst[:n], src[:n])
			F32ToBF16Ref(dst[n:], src[n:])
		},
	}
}

// vecTailMax is the widest vector (AVX-512: 16 float32).
const vecTailMax = 16

// tailBufs holds the padded tail vectors of one call (up to five
// operands), from a pool: a local array handed to a kernel through a func
// value escapes to the heap (the compiler cannot see the assembly's
// noescape directive through it), and that allocation, one per ragged attention
// row, cost more than the kernel itself (Gemma 2's step: 0.09 s a step in
// the allocator against 0.02 s in softcapAVX512; TestTailsDoNotAllocate).
type tailBufs [5][vecTailMax]float32

var tailPool = sync.Pool{New: func() any { return new(tailBufs) }}

func getTail() *tailBufs { return tailPool.Get().(*tailBufs) }

// padTail copies x (shorter than w) into buf and fills the rest of buf's
// first w lanes with pad, returning those w lanes.
func padTail(buf *[vecTailMax]float32, w int, x []float32, pad float32) []float32 {
	t := buf[:w]
	n := copy(t, x)
	for i := n; i < w; i++ {
		t[i] = pad
	}
	return t
}

// unpadTail copies the first len(dst) lanes of a padded tail to dst and
// returns them.
func unpadTail(dst, t []float32) []float32 {
	n := copy(dst, t)
	return dst[:n]
}
