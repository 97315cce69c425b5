package asm

// Few output columns: C = alpha·A·op(B) + beta·C with A a big row-major
// m×k activation and n a LoRA rank (h = x·Aᵀ, dh = g·B). The blocked
// driver packs all of A there and fills at most half of its 32-column
// tile; gemmSkinny reads A's rows in place and packs only op(B), which is
// k×n and small, into 16-column panels.

// skinnyMaxN is the widest n that gemmSkinny takes. Measured on Sapphire
// Rapids (M=2048, k=256 and 704, one thread), against the packed path:
// n=4..16 about 3x faster, n=32..96 1.2-1.9x; at n=128..512 the two are
// within noise of each other (both ~110 GFLOP/s), so wide products keep
// the packed path and its cache blocking for big operands.
const skinnyMaxN = 96

// skinnyKernel computes rows×16 of C: c[i*ldc+j] for i < rows, j < w, from
// rows rows of A (lda apart, kc each) and a kc×16 panel b of op(B), as
// alpha*sum + beta*c (beta == ±0 does not read c). w <= 16 columns are
// written; the rest of the 16-column row of c is not touched.
type skinnyKernel struct {
	rows int
	fn   func(kc int, a []float32, lda int, b, c []float32, ldc, w int, alpha, beta float32)
}

// useSkinny reports whether gemmRect should send an m×n product with
// untransposed A to gemmSkinny: enough rows for one whole kernel call (the
// last rows reuse a block that overlaps the previous one) and few columns.
func useSkinny(g *gemmImpl, transA bool, m, n int) bool {
	return g.skinny != nil && !transA && m >= g.skinny.rows && n <= skinnyMaxN
}

// gemmSkinny is gemmRect for useSkinny's shapes. op(B) is packed whole
// first (k×16 per strip, in g.kc blocks: one copy of k×n floats per call,
// 1/m of the FMAs),
// then each block of rows is finished before the next: its rows×kc slab of
// A stays in L1 across the strips, and A streams from memory once, row
// block by row block, which the hardware prefetchers follow (sweeping all
// rows once per k block instead reads A in short pieces and runs at half
// the speed for k=704).
func gemmSkinny(g *gemmImpl, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	s := g.skinny
	const nr = 16
	rows := s.rows
	strips := (n + nr - 1) / nr
	buf := getBuf(k * strips * nr)
	bp := *buf
	for pc := 0; pc < k; pc += g.kc {
		b.PackB(bp[pc*strips*nr:], pc, min(g.kc, k-pc), j0, n, nr)
	}
	// block computes rows of C from A's rows [i, i+rows) into dst (leading
	// dimension ld, w columns per strip), the first k block with beta bt.
	block := func(i int, dst []float32, ld int, bt float32) {
		for pc := 0; pc < k; pc += g.kc {
			kc := min(g.kc, k-pc)
			if pc > 0 {
				bt = 1 // later k blocks accumulate onto the first
			}
			arow := a[(i0+i)*lda+pc:]
			panels := bp[pc*strips*nr:]
			for q := 0; q < strips; q++ {
				w := min(nr, n-q*nr)
				s.fn(kc, arow, lda, panels[q*kc*nr:], dst[q*nr:], ld, w, alpha, bt)
			}
		}
	}
	full := m / rows * rows
	for ib := 0; ib < full; ib += rows {
		block(ib, c[(i0+ib)*ldc+j0:], ldc, beta)
	}
	if tail := m - full; tail > 0 {
		// The last block ends at row m (m >= rows): compute it into a
		// strips×16-wide scratch and add only its last tail rows, which no
		// full block covered.
		wide := strips * nr
		scratch := getBuf(rows * wide)
		block(m-rows, *scratch, wide, 0)
		addTile(c[(i0+full)*ldc+j0:], ldc, (*scratch)[(rows-tail)*wide:], wide, tail, n, beta)
		putBuf(scratch)
	}
	putBuf(buf)
}
