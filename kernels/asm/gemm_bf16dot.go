package asm

import (
	"time"
	"unsafe"

	"github.com/ftune/ftune/internal/half"
)

// The bf16 GEMM: both operands rounded to bfloat16, products summed in
// float32. On CPUs with AVX512_BF16 one VDPBF16PS does 32 multiply-adds
// where VFMADD231PS does 16 (on arm64 with FEAT_BF16, one BFDOT 8 where
// FMLA does 4), so a large product runs up to twice as fast as Sgemm, for
// the rounding of A's values (and of B's, where B is not bf16 already). A bf16 weight loses nothing; an NF4 weight is rounded
// once it is dequantized, as bitsandbytes dequantizes to bf16.
//
// The driver is gemmPacked's: op(A) and op(B) are packed as float32
// micro-panels by the same packers (BSource included, so every weight
// format works unchanged), then each panel is rewritten in place as bf16
// pairs (pairPanel): k steps 2q and 2q+1 of a row share one 32-bit slot,
// 2q in the low half. The AVX-512 micro-kernel reads one slot of A and 16
// of B per VDPBF16PS, the NEON one one slot of A and 4 of B per BFDOT.

// dotGemm is the bf16 kernel and its blocking. mr×nr is the float32
// kernel's tile (AVX-512 12×32, NEON 8×12); kc counts k values, so a
// 512-deep panel of pairs takes the bytes of the float32 kernel's 256.
type dotGemm struct {
	mr, nr, kc, mc, nc int
	// kernel computes c[i*ldc+j] = alpha*sum_q (a_lo*b_lo + a_hi*b_hi) +
	// beta*c[i*ldc+j] over kq pairs for the mr×nr tile; beta == 0 never
	// reads c. a and b are pair panels (kq*mr and kq*nr slots).
	kernel func(kq int, a, b []uint32, c []float32, ldc int, alpha, beta float32)
	// pairRows, when not nil, is pairPanel's loop over whole pairs of rows
	// in assembly (kq ≥ 1): dst[q*r+x] = bf16(src[2q*r+x]) |
	// bf16(src[(2q+1)*r+x])<<16, dst possibly src itself.
	pairRows func(dst []uint32, src []float32, r, kq int)
	// pairCols, when not nil, writes one nr-column pair panel of a stored
	// k×n bf16 B (rows ldb apart, kq ≥ 1 pairs of rows): dst[q*nr+x] =
	// src[2q*ldb+x] | src[(2q+1)*ldb+x]<<16.
	pairCols func(dst []uint32, src []uint16, ldb, kq int)
	fast     bool // the kernel is the CPU's bf16 instructions
}

// bf16DotGo is the pure-Go kernel: the contract in plain loops, for CPUs
// without bf16 instructions, the purego build and the tests. It is not fast.
var bf16DotGo = dotGemm{mr: 4, nr: 4, kc: 512, mc: 256, nc: 1024, kernel: dotKernelGo}

// dotCur is the kernel GemmBF16Dot uses; SetImpl switches it with the rest.
var dotCur *dotGemm

func init() { registerImpl(func(i Impl) { dotCur = dotFor(i) }) }

// BF16DotFast reports whether GemmBF16Dot runs on the CPU's bf16
// dot-product instructions. When false it runs dotKernelGo, correct but
// far slower than Sgemm: callers choosing it for speed should not.
func BF16DotFast() bool { return dotCur.fast }

// BF16DotISA names the instructions this build's bf16 kernel runs on,
// present on this CPU or not ("AVX512_BF16 (VDPBF16PS)" on amd64, "BF16
// (BFDOT)" on arm64), or is "" where the build has no such kernel (purego,
// other architectures): for messages saying why precision bf16 would not
// pay.
func BF16DotISA() string { return bf16DotISA }

// BF16DotSpeedup times GemmBF16DotB against SgemmBF16 on this CPU, on one
// goroutine, for a 192×1024×1024 product with a bf16 weight in [out, in]
// layout (a layer's x·Wᵀ), best of three runs each after a warm-up, and
// returns how many times faster the bf16 GEMM ran: what precision bf16
// buys this CPU's products, which the instruction set alone does not say
// (on a Zen 5, VDPBF16PS does 1.85× the multiply-adds of VFMADD231PS per
// second; other cores were not measured). About 15 ms.
func BF16DotSpeedup() float64 {
	const m, n, k = 192, 1024, 1024
	a, c := make([]float32, m*k), make([]float32, m*n)
	b := make([]uint16, n*k)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range b {
		b[i] = half.F32ToBF16(float32(i%5) - 2)
	}
	g, d := gemmCur, dotCur
	src := bf16Source{b: b, ldb: k, trans: true, rows4: g.packRows4BF16, cvt: g.cvtBF16}
	best := func(f func()) time.Duration {
		f()
		var fastest time.Duration
		for range 3 {
			t := time.Now()
			f()
			if e := time.Since(t); fastest == 0 || e < fastest {
				fastest = e
			}
		}
		return fastest
	}
	f32 := best(func() { gemmRect(g, false, 0, m, 0, n, k, 1, a, k, src, 0, c, n) })
	bf16 := best(func() { gemmPairs(d, g.packRows4, false, 0, m, 0, n, k, 1, a, k, src, 0, c, n) })
	return f32.Seconds() / bf16.Seconds()
}

// dotMinDim is the fewest rows and columns GemmBF16Dot packs for: below
// it (one token at a time, a LoRA rank: x·Aᵀ has r columns, the gradient
// of A r rows) one operand's panels are used too few times to repay their
// conversion to pairs, and the product goes to Sgemm's kernels in float32
// instead, which read such operands in place.
const dotMinDim = 32

// GemmBF16DotSource computes C = alpha*op(A)*op(B) + beta*C like SgemmSource, but
// with op(A) and op(B) rounded to bfloat16 (to nearest even) and the
// products summed in float32. beta == 0 overwrites C. On the bf16
// instructions subnormal bf16 inputs count as zero. Products of fewer than
// dotMinDim rows or columns are computed by SgemmSource, unrounded.
func GemmBF16DotSource(transA bool, m, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	checkGemm("GemmBF16DotSource", transA, false, m, n, k, lda, len(a), max(1, n), k*n, ldc, len(c))
	gemmBF16Dot(Threads(), transA, m, n, k, alpha, a, lda, b, beta, c, ldc)
}

// gemmBF16Dot is GemmBF16DotSource after the checks, split over at most
// t goroutines.
func gemmBF16Dot(t int, transA bool, m, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	if m < dotMinDim || n < dotMinDim {
		gemmOn(t, transA, m, n, k, alpha, a, lda, b, beta, c, ldc)
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	d, g := dotCur, gemmCur
	if t <= 1 || m*n*k < parallelMin {
		gemmPairs(d, g.packRows4, transA, 0, m, 0, n, k, alpha, a, lda, b, beta, c, ldc)
		return
	}
	splitRect(t, m, n, d.mr, d.nr, func(i0, m, j0, n int) {
		gemmPairs(d, g.packRows4, transA, i0, m, j0, n, k, alpha, a, lda, b, beta, c, ldc)
	})
}

// GemmBF16Dot is GemmBF16DotSource with a float32 B, stored n×k when
// transB: Sgemm's arguments, with its operands rounded to bf16.
func GemmBF16Dot(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmBF16Dot", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemmBF16Dot(Threads(), transA, m, n, k, alpha, a, lda, f32Source{b: b, ldb: ldb, trans: transB, rows4: gemmCur.packRows4}, beta, c, ldc)
}

// GemmBF16DotSerial is GemmBF16Dot on the calling goroutine alone, as
// SgemmSerial is Sgemm, for callers that already run one task per core
// (attention's per-head tasks).
func GemmBF16DotSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmBF16DotSerial", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemmBF16Dot(1, transA, m, n, k, alpha, a, lda, f32Source{b: b, ldb: ldb, trans: transB, rows4: gemmCur.packRows4}, beta, c, ldc)
}

// GemmBF16DotB is GemmBF16Dot with B held as bfloat16 bit patterns (stored
// n×k when transB), the layout of a frozen bf16 weight: SgemmBF16's
// arguments.
func GemmBF16DotB(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmBF16DotB", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	g := gemmCur
	gemmBF16Dot(Threads(), transA, m, n, k, alpha, a, lda, bf16Source{b: b, ldb: ldb, trans: transB, rows4: g.packRows4BF16, cvt: g.cvtBF16}, beta, c, ldc)
}

// gemmPairs computes C[i0:i0+m, j0:j0+n] on the calling goroutine: the
// loops of gemmPacked, with every packed panel turned into pairs.
func gemmPairs(d *dotGemm, rows4 packRows4, transA bool, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	mr, nr := d.mr, d.nr
	bl := blockFor(m, n, k, d.mc, d.kc, d.nc, mr, nr, 2)
	mcBlk, kcBlk := bl.mc, bl.kc
	buf, ap, bp, tile := bl.buffers()

	for ic := 0; ic < m; ic += mcBlk {
		mc := min(mcBlk, m-ic)
		for pc := 0; pc < k; pc += kcBlk {
			kc := min(kcBlk, k-pc)
			kq := (kc + 1) / 2
			bt := beta
			if pc > 0 {
				bt = 1 // later k blocks accumulate onto the first
			}
			packAPairs(d, ap, a, lda, transA, i0+ic, mc, pc, kc, mr, rows4)
			for jc := 0; jc < n; jc += d.nc {
				nc := min(d.nc, n-jc)
				if ps, ok := b.(pairSource); !ok || !ps.packPairs(d, bp, pc, kc, j0+jc, nc, nr, rows4) {
					b.PackB(bp, pc, kc, j0+jc, nc, nr)
					for s := 0; s < nc; s += nr {
						pairPanel(d, bp[s*kc:], kc, nr)
					}
				}
				for ir := 0; ir < mc; ir += mr {
					h := min(mr, mc-ir)
					apan := pairs(ap[ir*kc:], kq*mr)
					stripTiles(h, mr, nc, nr, c[(i0+ic+ir)*ldc+j0+jc:], ldc, tile, bt, func(jr int, cc []float32, ldc int, beta float32) {
						d.kernel(kq, apan, pairs(bp[jr*kc:], kq*nr), cc, ldc, alpha, beta)
					})
				}
			}
		}
	}
	putBuf(buf)
}

// packAPairs writes op(A)[i0:i0+mc, p0:p0+kc] as pair panels. A row-major
// A (transA false) with a whole number of pairs is rounded row by row
// into bf16 (one vector pass over contiguous values), and its 32-bit pair
// words are transposed into the panels, half the values packA would move;
// otherwise packA's float32 panels are paired in place. Both round as
// half.F32ToBF16 does (F32ToBF16 and pairPanel are tested against it).
func packAPairs(d *dotGemm, ap, a []float32, lda int, transA bool, i0, mc, p0, kc, mr int, rows4 packRows4) {
	if transA || kc%2 != 0 {
		packA(ap, a, lda, transA, i0, mc, p0, kc, mr, rows4)
		for r := 0; r < mc; r += mr {
			pairPanel(d, ap[r*kc:], kc, mr)
		}
		return
	}
	kq := kc / 2
	words := getBuf(mr * kq)
	defer putBuf(words)
	halves := unsafe.Slice((*uint16)(unsafe.Pointer(&(*words)[0])), 2*mr*kq)
	for r := 0; r < mc; r += mr {
		h := min(mr, mc-r)
		for i := 0; i < h; i++ {
			F32ToBF16(halves[i*kc:(i+1)*kc], a[(i0+r+i)*lda+p0:][:kc])
		}
		packA(ap[r*kc:], *words, kq, false, 0, h, 0, kq, mr, rows4)
	}
}

// pairSource is a BSource that writes pair panels without the float32
// round trip: a bf16 weight in [out, in] layout holds each pair of k steps
// side by side, so its pair panels are its 32-bit words transposed, by the
// float32 A packer (which moves bits, never values).
type pairSource interface {
	// packPairs writes the pair panels of op(B)[p0:p0+kc, j0:j0+nc] where
	// PackB and pairPanel would leave them and reports true, or reports
	// false, writing nothing, when its layout does not allow it.
	packPairs(d *dotGemm, dst []float32, p0, kc, j0, nc, nr int, rows4 packRows4) bool
}

// packPairs: a stored n×k bf16 B (x·Wᵀ) whose pairs lie on 32-bit words
// (even k offset, even row length, a 4-byte aligned start) and a whole
// number of pairs; a stored k×n one (g·W) through the implementation's
// pairCols, whose two rows' bf16 are interleaved (edge panels the float32
// way); anything else goes the float32 way.
func (s bf16Source) packPairs(d *dotGemm, dst []float32, p0, kc, j0, nc, nr int, rows4 packRows4) bool {
	if kc%2 != 0 {
		return false
	}
	if !s.trans {
		if d.pairCols == nil {
			return false
		}
		for s0 := 0; s0 < nc; s0 += nr {
			panel := dst[s0*kc:]
			if w := min(nr, nc-s0); w < nr {
				s.PackB(panel, p0, kc, j0+s0, w, nr)
				pairPanel(d, panel, kc, nr)
				continue
			}
			d.pairCols(pairs(panel, kc/2*nr), s.b[p0*s.ldb+j0+s0:], s.ldb, kc/2)
		}
		return true
	}
	if p0%2 != 0 || s.ldb%2 != 0 || len(s.b) < 2 || uintptr(unsafe.Pointer(&s.b[0]))%4 != 0 {
		return false
	}
	words := unsafe.Slice((*float32)(unsafe.Pointer(&s.b[0])), len(s.b)/2)
	for s0 := 0; s0 < nc; s0 += nr {
		packA(dst[s0*kc:], words, s.ldb/2, false, j0+s0, min(nr, nc-s0), p0/2, kc/2, nr, rows4)
	}
	return true
}

// pairs views the first n float32 slots of p as the uint32 pair slots
// pairPanel wrote there.
func pairs(p []float32, n int) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(&p[0])), len(p))[:n]
}

// pairPanel rewrites a packed kc×r float32 panel (k step p at p[p*r:]) in
// place as ceil(kc/2)×r pairs: slot q*r+x holds bf16(p[2q][x]) in its low
// half and bf16(p[2q+1][x]) in its high half (0 past kc). Slot row q
// overwrites float32 row q, which rows 2q and 2q+1 do not follow, and row
// 0 is read element by element before it is written.
func pairPanel(d *dotGemm, p []float32, kc, r int) {
	u := pairs(p, kc*r)
	q0 := 0
	if d.pairRows != nil && kc >= 2 {
		q0 = kc / 2
		d.pairRows(u, p, r, q0)
	}
	pairRowsGo(u, p, r, q0, kc/2)
	if kc%2 == 1 {
		q := kc / 2
		even := p[2*q*r:][:r]
		dst := u[q*r:][:r]
		for x := range dst {
			dst[x] = uint32(half.F32ToBF16(even[x]))
		}
	}
}

// pairRowsGo is pairRows in Go, for slot rows q0 ≤ q < q1 (in place
// allowed, as pairPanel describes).
func pairRowsGo(dst []uint32, src []float32, r, q0, q1 int) {
	for q := q0; q < q1; q++ {
		even, odd := src[2*q*r:][:r], src[(2*q+1)*r:][:r]
		row := dst[q*r:][:r]
		for x := range row {
			row[x] = uint32(half.F32ToBF16(even[x])) | uint32(half.F32ToBF16(odd[x]))<<16
		}
	}
}

// dotKernelGo is the kernel contract for a 4×4 tile in plain Go. Subnormal
// inputs count as zero, as on the bf16 instructions.
func dotKernelGo(kq int, a, b []uint32, c []float32, ldc int, alpha, beta float32) {
	const mr, nr = 4, 4
	var acc [mr * nr]float32
	for q := 0; q < kq; q++ {
		for i := 0; i < mr; i++ {
			alo, ahi := daz(a[q*mr+i]), daz(a[q*mr+i]>>16)
			for j := 0; j < nr; j++ {
				blo, bhi := daz(b[q*nr+j]), daz(b[q*nr+j]>>16)
				acc[i*nr+j] += alo*blo + ahi*bhi
			}
		}
	}
	for i := 0; i < mr; i++ {
		for j := 0; j < nr; j++ {
			v := alpha * acc[i*nr+j]
			if beta != 0 {
				v += beta * c[i*ldc+j]
			}
			c[i*ldc+j] = v
		}
	}
}

// daz widens the bf16 in h's low half, subnormals as (signed) zero.
func daz(h uint32) float32 {
	v := uint16(h)
	if v&0x7f80 == 0 {
		v &= 0x8000
	}
	return half.BF16ToF32(v)
}
