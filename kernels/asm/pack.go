package asm

import "math"

// Packed layouts. The micro-kernel reads both operands as contiguous
// streams, one k step at a time:
//
//	A block (mc×kc of op(A)): ceil(mc/MR) micro-panels; panel r holds rows
//	r*MR..r*MR+MR-1, k step p at offset p*MR. Rows past mc are zero.
//	B block (kc×nc of op(B)): ceil(nc/NR) micro-panels; panel s holds
//	columns s*NR..s*NR+NR-1, k step p at offset p*NR. Columns past nc are zero.
//
// Zero padding lets the kernel always compute whole MR×NR tiles; the
// driver writes only the valid part of an edge tile back to C.

// BSource supplies op(B), the k×n right-hand operand of a GEMM, to the
// blocked driver one block at a time, converting to float32 as it packs.
// Sgemm uses a float32 source, SgemmBF16 a bfloat16 one; a quantized
// weight format plugs in by implementing PackB, without touching the driver.
type BSource interface {
	// PackB writes the block op(B)[p0:p0+kc, j0:j0+nc] into dst as
	// ceil(nc/nr) micro-panels of kc×nr floats: panel s holds columns
	// j0+s*nr ... j0+s*nr+nr-1 in dst[s*kc*nr:(s+1)*kc*nr], k step p at
	// offset p*nr within it, and zeros for columns at or past j0+nc.
	// It is called from several goroutines at once with disjoint dst.
	PackB(dst []float32, p0, kc, j0, nc, nr int)
}

// f32Source is a float32 B: stored k×n, or n×k when trans. rows4 is the
// implementation's A transposer: a stored n×k B is op(B)ᵀ row-major, so its
// panels are packed exactly like A's, with nr for mr.
type f32Source struct {
	b     []float32
	ldb   int
	trans bool
	rows4 packRows4
}

func (s f32Source) PackB(dst []float32, p0, kc, j0, nc, nr int) {
	for s0 := 0; s0 < nc; s0 += nr {
		w := min(nr, nc-s0)
		panel := dst[:kc*nr]
		dst = dst[kc*nr:]
		j := j0 + s0
		if !s.trans {
			for p := 0; p < kc; p++ {
				row := panel[p*nr : p*nr+nr]
				src := s.b[(p0+p)*s.ldb+j:]
				copy(row, src[:w])
				clear(row[w:])
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: the panel of A's layout.
		packA(panel, s.b, s.ldb, false, j, w, p0, kc, nr, s.rows4)
	}
}

// bf16Source is a B of bfloat16 bit patterns: stored k×n, or n×k when trans.
type bf16Source struct {
	b     []uint16
	ldb   int
	trans bool
}

// bf16 is the float32 whose upper half is h: bfloat16 is float32 with the
// low 16 mantissa bits dropped, so the conversion is exact.
func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func (s bf16Source) PackB(dst []float32, p0, kc, j0, nc, nr int) {
	for s0 := 0; s0 < nc; s0 += nr {
		w := min(nr, nc-s0)
		panel := dst[:kc*nr]
		dst = dst[kc*nr:]
		j := j0 + s0
		if !s.trans {
			for p := 0; p < kc; p++ {
				row := panel[p*nr : p*nr+nr]
				src := s.b[(p0+p)*s.ldb+j:]
				src = src[:w]
				for jj, h := range src {
					row[jj] = bf16(h)
				}
				clear(row[w:])
			}
			continue
		}
		for jj := 0; jj < w; jj++ {
			src := s.b[(j+jj)*s.ldb+p0:]
			src = src[:kc]
			col := panel[jj:]
			for p, h := range src {
				col[p*nr] = bf16(h)
			}
		}
		zeroCols(panel, kc, nr, w)
	}
}

// zeroCols clears columns w..nr-1 of a kc×nr panel.
func zeroCols(panel []float32, kc, nr, w int) {
	if w == nr {
		return
	}
	for p := 0; p < kc; p++ {
		clear(panel[p*nr+w : p*nr+nr])
	}
}

// packA writes the block op(A)[i0:i0+mc, p0:p0+kc] into dst as
// ceil(mc/mr) micro-panels of kc×mr floats (layout above). op(A)[i][p] is
// a[i*lda+p], or a[p*lda+i] when trans. rows4, when not nil, is an
// assembly transposer for 4 rows × 8n k steps (see packA4).
func packA(dst []float32, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int, rows4 packRows4) {
	for r0 := 0; r0 < mc; r0 += mr {
		h := min(mr, mc-r0)
		panel := dst[:kc*mr]
		dst = dst[kc*mr:]
		i := i0 + r0
		if trans {
			// op(A) columns are stored rows: plain copies.
			for p := 0; p < kc; p++ {
				col := panel[p*mr : p*mr+mr]
				copy(col, a[(p0+p)*lda+i:][:h])
				clear(col[h:])
			}
			continue
		}
		g := 0
		if h == mr && rows4 != nil && kc >= 8 {
			// Whole 4-row groups and whole 8-step runs in assembly; the
			// leftover rows and k steps below in Go.
			n8 := kc / 8
			for ; g+4 <= mr; g += 4 {
				packA4(rows4, panel[g:], a[(i+g)*lda+p0:], lda, n8, mr)
			}
			for ii := 0; ii < g; ii++ {
				src := a[(i+ii)*lda+p0:][:kc]
				for p := n8 * 8; p < kc; p++ {
					panel[p*mr+ii] = src[p]
				}
			}
		}
		for ii := g; ii < h; ii++ {
			src := a[(i+ii)*lda+p0:]
			src = src[:kc]
			col := panel[ii:]
			for p, v := range src {
				col[p*mr] = v
			}
		}
		zeroCols(panel, kc, mr, h)
	}
}

// packRows4 transposes 4 rows (lda apart, from a) × 8*n8 k steps into an
// A micro-panel: a[r*lda+p] goes to dst[p*mr+r].
type packRows4 func(dst, a *float32, lda, n8, mr int)

// packA4 checks the slices cover what rows4 touches, then calls it.
func packA4(rows4 packRows4, dst, a []float32, lda, n8, mr int) {
	_ = a[3*lda+8*n8-1]
	_ = dst[(8*n8-1)*mr+3]
	rows4(&dst[0], &a[0], lda, n8, mr)
}
