package asm

import "github.com/ftune/ftune/internal/half"

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
			src := s.b[p0*s.ldb+j:]
			if w < nr {
				clear(panel) // one memclr for the padding, not one per row
			}
			if copyFixed(panel, nr, src, s.ldb, kc, w) {
				continue
			}
			for p := 0; p < kc; p++ {
				copy(panel[p*nr:p*nr+w], src[p*s.ldb:p*s.ldb+w])
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: the panel of A's layout.
		packA(panel, s.b, s.ldb, false, j, w, p0, kc, nr, s.rows4)
	}
}

// bf16Source is a B of bfloat16 bit patterns: stored k×n, or n×k when
// trans. rows4 and cvt are the implementation's assembly helpers (nil for
// the Go loops): rows4 transposes 4 stored rows as packA4 does, cvt widens
// whole panel rows.
type bf16Source struct {
	b     []uint16
	ldb   int
	trans bool
	rows4 packRows4BF16
	cvt   cvtRowsBF16
}

// packRows4BF16 is packRows4 reading bfloat16.
type packRows4BF16 func(dst *float32, a *uint16, lda, n8, mr int)

// cvtRowsBF16 converts rows×(8*n8) bfloat16s (rows ld apart) to float32
// rows 8*n8 apart.
type cvtRowsBF16 func(dst *float32, src *uint16, ld, rows, n8 int)

// bf16 is the float32 whose upper half is h: bfloat16 is float32 with the
// low 16 mantissa bits dropped, so the conversion is exact.
func (s bf16Source) PackB(dst []float32, p0, kc, j0, nc, nr int) {
	for s0 := 0; s0 < nc; s0 += nr {
		w := min(nr, nc-s0)
		panel := dst[:kc*nr]
		dst = dst[kc*nr:]
		j := j0 + s0
		if s.trans {
			packBF16T(panel, s.b, s.ldb, j, w, p0, kc, nr, s.rows4)
			continue
		}
		if w == nr && nr%8 == 0 && s.cvt != nil {
			src := s.b[p0*s.ldb+j:]
			_ = src[(kc-1)*s.ldb+nr-1]
			s.cvt(&panel[0], &src[0], s.ldb, kc, nr/8)
			continue
		}
		for p := 0; p < kc; p++ {
			row := panel[p*nr : p*nr+nr]
			src := s.b[(p0+p)*s.ldb+j:]
			src = src[:w]
			for jj, h := range src {
				row[jj] = half.BF16ToF32(h)
			}
			clear(row[w:])
		}
	}
}

// packBF16T is packA for one panel of a stored n×k bfloat16 B: columns
// j..j+w of op(B) are stored rows, written as a kc×nr panel.
func packBF16T(panel []float32, b []uint16, ldb, j, w, p0, kc, nr int, rows4 packRows4BF16) {
	g := 0
	if rows4 != nil && kc >= 8 && w >= 4 {
		n8 := kc / 8
		for ; g+4 <= w; g += 4 {
			src := b[(j+g)*ldb+p0:]
			_ = src[3*ldb+8*n8-1]
			_ = panel[g+(8*n8-1)*nr+3]
			rows4(&panel[g], &src[0], ldb, n8, nr)
		}
		for jj := 0; jj < g; jj++ {
			src := b[(j+jj)*ldb+p0:][:kc]
			for p := n8 * 8; p < kc; p++ {
				panel[p*nr+jj] = half.BF16ToF32(src[p])
			}
		}
	}
	for jj := g; jj < w; jj++ {
		src := b[(j+jj)*ldb+p0:]
		src = src[:kc]
		col := panel[jj:]
		for p, h := range src {
			col[p*nr] = half.BF16ToF32(h)
		}
	}
	zeroCols(panel, kc, nr, w)
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
			if h < mr {
				clear(panel)
			}
			if copyFixed(panel, mr, a[p0*lda+i:], lda, kc, h) {
				continue
			}
			for p := 0; p < kc; p++ {
				col := panel[p*mr : p*mr+mr]
				copy(col, a[(p0+p)*lda+i:][:h])
				clear(col[h:])
			}
			continue
		}
		g := 0
		if rows4 != nil && kc >= 8 && h >= 4 {
			// Whole 4-row groups and whole 8-step runs in assembly; the
			// leftover rows and k steps below in Go.
			n8 := kc / 8
			for ; g+4 <= h; g += 4 {
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

// copyFixed copies rows×w floats (source rows ld apart) into dst rows
// dstStride apart for the widths that come up (whole panels, LoRA ranks),
// as fixed-size array assignments: the compiler turns those into a few
// vector moves, where copy() would call memmove for every short row. It
// reports false for other widths.
func copyFixed(dst []float32, dstStride int, src []float32, ld, rows, w int) bool {
	switch w {
	case 32:
		for p := 0; p < rows; p++ {
			*(*[32]float32)(dst[p*dstStride:]) = *(*[32]float32)(src[p*ld:])
		}
	case 16:
		for p := 0; p < rows; p++ {
			*(*[16]float32)(dst[p*dstStride:]) = *(*[16]float32)(src[p*ld:])
		}
	case 12:
		for p := 0; p < rows; p++ {
			*(*[12]float32)(dst[p*dstStride:]) = *(*[12]float32)(src[p*ld:])
		}
	case 8:
		for p := 0; p < rows; p++ {
			*(*[8]float32)(dst[p*dstStride:]) = *(*[8]float32)(src[p*ld:])
		}
	case 6:
		for p := 0; p < rows; p++ {
			*(*[6]float32)(dst[p*dstStride:]) = *(*[6]float32)(src[p*ld:])
		}
	case 4:
		for p := 0; p < rows; p++ {
			*(*[4]float32)(dst[p*dstStride:]) = *(*[4]float32)(src[p*ld:])
		}
	default:
		return false
	}
	return true
}
