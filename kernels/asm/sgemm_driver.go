package asm

import (
	"math"
	"sync"

	"github.com/ftune/ftune/internal/half"
)

// gemmImpl is one micro-kernel and the cache blocking that suits it.
//
// Loop order (row-major C; B is the vector side, A the broadcast side):
//
//	for ic in m step mc          A block mc×kc: packed once, lives in L3
//	  for pc in k step kc
//	    pack A[ic:ic+mc, pc:pc+kc]
//	    for jc in n step nc      B block kc×nc: packed, stays in L2
//	      pack B[pc:pc+kc, jc:jc+nc]
//	      for ir in mc step mr   A micro-panel mr×kc: stays in L1
//	        for jr in nc step nr B micro-panel kc×nr: streams from L2
//	          kernel: C[ir:ir+mr, jr:jr+nr] (+)= Apanel · Bpanel
//
// The kernel reads A and B at a few bytes per FMA from L1/L2, and C once
// per kc steps, so it runs at the FMA ports' rate. B is repacked once per
// mc rows of A, so mc is large; A once per call. A row-major A is not
// packed at all where the implementation has an in-place kernel and C is
// narrow (useInPlaceA): whole micro-panels are read where they are stored.
type gemmImpl struct {
	impl       Impl
	mr, nr     int // micro-tile: the kernel computes mr×nr of C per call
	kc, mc, nc int // cache blocking (mc a multiple of mr, nc of nr)
	// kernel computes c[i*ldc+j] = alpha*sum_p a[p*mr+i]*b[p*nr+j] +
	// beta*c[i*ldc+j] for the whole mr×nr tile; beta == 0 never reads c.
	kernel func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	// Assembly packing helpers; nil means the Go loops. packRows4 packs
	// row-major A (and n×k B), the bf16 pair packs bfloat16 B.
	packRows4     packRows4
	packRows4BF16 packRows4BF16
	cvtBF16       cvtRowsBF16
	// dot8 and dot8BF16, when not nil, read a stored n×k B in place for
	// products of at most dotRows rows (gemmDotRows).
	dot8     func(k int, a, b []float32, ldb int, c []float32, alpha, beta float32)
	dot8BF16 func(k int, a []float32, b []uint16, ldb int, c []float32, alpha, beta float32)
	// strided are kernels reading B in place (k step p at b[p*ldb:]) for
	// m <= mr rows with a row-major float32 B, by increasing mr; may be nil.
	strided []stridedKernel
	// skinny, when not nil, reads a big row-major A in place for products
	// with few columns (gemmSkinny).
	skinny *skinnyKernel
	// inplace, when not nil, is a kernel reading a whole mr-row micro-panel
	// of a row-major A where it is stored (row i at a[i*lda:], k step p at
	// a[i*lda+p]) instead of a packed copy; see useInPlaceA.
	inplace func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32)
}

// stridedKernel computes an mr×nr tile like gemmImpl.kernel, but reads B
// unpacked with leading dimension ldb. kc, when not 0, caps the
// implementation's k block for it (see sgemmStrided16KC).
type stridedKernel struct {
	mr, nr int
	fn     func(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)
	kc     int
}

func (s stridedKernel) call(kc int, a, b, c []float32, ldb, ldc int, alpha, beta float32) {
	_, _, _ = a[kc*s.mr-1], b[(kc-1)*ldb+s.nr-1], c[(s.mr-1)*ldc+s.nr-1]
	s.fn(kc, &a[0], &b[0], &c[0], ldb, ldc, alpha, beta)
}

// gemmCur is the kernel Sgemm uses; SetImpl switches it.
var gemmCur *gemmImpl

func init() { registerImpl(func(i Impl) { gemmCur = gemmFor(i) }) }

// parallelMin is the smallest m*n*k worth splitting over goroutines: below
// it (about 30 µs of work on one core) starting workers costs more than it
// saves, and small GEMMs (LoRA ranks, one token at a time) stay on the
// caller's goroutine.
const parallelMin = 1 << 21

func gemm(transA bool, m, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	gemmOn(Threads(), transA, m, n, k, alpha, a, lda, b, beta, c, ldc)
}

// gemmOn is gemm split over at most t goroutines.
func gemmOn(t int, transA bool, m, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		// As in BLAS, A and B are not read when they cannot contribute.
		scaleC(m, n, beta, c, ldc)
		return
	}
	g := gemmCur
	if t <= 1 || m*n*k < parallelMin {
		// Small GEMMs (LoRA ranks, one token) allocate no closure.
		gemmRect(g, transA, 0, m, 0, n, k, alpha, a, lda, b, beta, c, ldc)
		return
	}
	splitRect(t, m, n, g.mr, g.nr, func(i0, m, j0, n int) {
		gemmRect(g, transA, i0, m, j0, n, k, alpha, a, lda, b, beta, c, ldc)
	})
}

// splitRect runs rect over at most t disjoint rectangles covering the m×n
// output, the last on the calling goroutine, and returns when all are done.
// Each worker computes its own rectangle of C with private packing
// buffers, so workers never wait for each other; the price is that each
// packs every row of A and column of B its rectangle reads. A grid of
// pm×pn rectangles packs A pn times and B pm times over, and a worker
// packs m/pm rows and n/pn columns (all of k each): splitGrid picks the
// grid that makes that least. Two workers split the longer side, as one
// row of rectangles or one column; four or more split both: a 512×576
// product (SmolLM2's x·Wᵀ at 512 tokens) over 16 workers is a 4×4 grid,
// each worker packing 128 rows of A and 144 columns of B, where one row
// of 16 rectangles would have each pack all 512 rows and 36 columns.
func splitRect(t, m, n, mr, nr int, rect func(i0, m, j0, n int)) {
	mPanels := (m + mr - 1) / mr
	nStrips := (n + nr - 1) / nr
	pm, pn := splitGrid(t, m, n, mPanels, nStrips)
	if pm*pn <= 1 {
		rect(0, m, 0, n)
		return
	}
	var wg sync.WaitGroup
	for q := range pm * pn {
		i, j := q/pn, q%pn
		i0, i1 := min(i*mPanels/pm*mr, m), min((i+1)*mPanels/pm*mr, m)
		j0, j1 := min(j*nStrips/pn*nr, n), min((j+1)*nStrips/pn*nr, n)
		if q == pm*pn-1 {
			rect(i0, i1-i0, j0, j1-j0)
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); rect(i0, i1-i0, j0, j1-j0) }()
	}
	wg.Wait()
}

// splitGrid is the grid of splitRect: pm parts of the mPanels row panels
// by pn parts of the nStrips column strips, pm·pn the most workers up to t
// that some grid gives (each part at least one panel or strip), and among
// those grids the one whose rectangle packs the fewest rows and columns,
// m/pm + n/pn; ties go to fewer row parts.
func splitGrid(t, m, n, mPanels, nStrips int) (pm, pn int) {
	for p := min(t, mPanels*nStrips); p > 1; p-- {
		best := math.Inf(1)
		for a := 1; a <= p; a++ {
			if p%a != 0 || a > mPanels || p/a > nStrips {
				continue
			}
			if c := float64(m)/float64(a) + float64(n)/float64(p/a); c < best {
				best, pm, pn = c, a, p/a
			}
		}
		if pm > 0 {
			return pm, pn
		}
	}
	return 1, 1
}

// gemmRect computes the rectangle C[i0:i0+m, j0:j0+n] on the calling
// goroutine, with the loops described at gemmImpl.
func gemmRect(g *gemmImpl, transA bool, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	if useSkinny(g, transA, m, n) {
		gemmSkinny(g, i0, m, j0, n, k, alpha, a, lda, b, beta, c, ldc)
		return
	}
	switch src := b.(type) {
	case f32Source:
		if src.trans && g.dot8 != nil && m <= dotRows && n >= 8 {
			gemmDotRows(transA, i0, m, j0, n, k, alpha, a, lda, src.b, src.ldb, g.dot8, func(x float32) float32 { return x }, beta, c, ldc)
			return
		}
		for _, s := range g.strided {
			if !src.trans && m <= s.mr && n >= s.nr {
				gemmFewRows(g, s, transA, i0, m, j0, n, k, alpha, a, lda, src, beta, c, ldc)
				return
			}
		}
	case bf16Source:
		if src.trans && g.dot8BF16 != nil && m <= dotRows && n >= 8 {
			gemmDotRows(transA, i0, m, j0, n, k, alpha, a, lda, src.b, src.ldb, g.dot8BF16, half.BF16ToF32, beta, c, ldc)
			return
		}
	}
	gemmPacked(g, transA, i0, m, j0, n, k, alpha, a, lda, b, beta, c, ldc)
}

// gemmPacked is gemmRect with both operands packed.
func gemmPacked(g *gemmImpl, transA bool, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	mr, nr := g.mr, g.nr
	bl := blockFor(m, n, k, g.mc, g.kc, g.nc, mr, nr, 1)
	mcBlk, kcBlk := bl.mc, bl.kc
	buf, ap, bp, tile := bl.buffers()

	for ic := 0; ic < m; ic += mcBlk {
		mc := min(mcBlk, m-ic)
		for pc := 0; pc < k; pc += kcBlk {
			kc := min(kcBlk, k-pc)
			bt := beta
			if pc > 0 {
				bt = 1 // later k blocks accumulate onto the first
			}
			// Whole panels of a row-major A are read in place (inPlace
			// rows); only the short last panel, if any, is packed, into
			// the start of ap.
			inPlace := 0
			if useInPlaceA(g, transA, n) {
				inPlace = mc / mr * mr
			}
			if inPlace < mc {
				packA(ap, a, lda, transA, i0+ic+inPlace, mc-inPlace, pc, kc, mr, g.packRows4)
			}
			for jc := 0; jc < n; jc += g.nc {
				nc := min(g.nc, n-jc)
				b.PackB(bp, pc, kc, j0+jc, nc, nr)
				for ir := 0; ir < mc; ir += mr {
					h := min(mr, mc-ir)
					row := (i0 + ic + ir) * ldc
					cs := c[row+j0+jc:]
					if ir < inPlace {
						arow := a[(i0+ic+ir)*lda+pc:]
						stripTiles(mr, mr, nc, nr, cs, ldc, tile, bt, func(jr int, cc []float32, ldc int, beta float32) {
							g.inplace(kc, arow, lda, bp[jr*kc:], cc, ldc, alpha, beta)
						})
						continue
					}
					apan := ap[(ir-inPlace)*kc:]
					stripTiles(h, mr, nc, nr, cs, ldc, tile, bt, func(jr int, cc []float32, ldc int, beta float32) {
						g.kernel(kc, apan, bp[jr*kc:], cc, ldc, alpha, beta)
					})
				}
			}
		}
	}
	putBuf(buf)
}

// stripTiles computes one strip of C, h ≤ mr rows by nc columns (c its
// first element), tile by tile: tileFn(jr, cc, ldc, beta) runs the
// micro-kernel for the mr×nr tile at column jr into cc. Whole tiles write
// C in place; an edge tile is computed whole into tile (beta 0), and only
// its h×w part inside C is written back.
func stripTiles(h, mr, nc, nr int, c []float32, ldc int, tile []float32, beta float32, tileFn func(jr int, cc []float32, ldc int, beta float32)) {
	for jr := 0; jr < nc; jr += nr {
		w := min(nr, nc-jr)
		cc := c[jr:]
		if h == mr && w == nr {
			tileFn(jr, cc, ldc, beta)
			continue
		}
		tileFn(jr, tile, nr, 0)
		addTile(cc, ldc, tile, nr, h, w, beta)
	}
}

// blocking is one product's cache blocks (gemmPacked, gemmPairs): mc rows
// and kc k steps per block, and the packing buffers' sizes.
type blocking struct {
	mc, kc              int
	mcMax, kcMax, ncMax int
	mr, nr              int
}

// blockFor divides m and k into equal blocks of at most mc rows and kc k
// steps: k=576 as 3×192 rather than 256+256+64, 4096 rows with mc=3072 as
// 2×2048, not 3072+1024, so that no short last block pays the packing and
// C traffic of a full one. Row blocks are whole mr-row panels; k blocks
// are multiples of kAlign (2 for bf16 pairs, which never straddle blocks).
func blockFor(m, n, k, mc, kc, nc, mr, nr, kAlign int) blocking {
	b := blocking{mc: mc, kc: kc, mr: mr, nr: nr}
	if nb := (k + kc - 1) / kc; nb > 1 {
		b.kc = roundUp((k+nb-1)/nb, kAlign)
	}
	if nb := (m + mc - 1) / mc; nb > 1 {
		b.mc = roundUp((m+nb-1)/nb, mr)
	}
	b.kcMax = min(k, b.kc)
	b.mcMax = roundUp(min(m, b.mc), mr)
	b.ncMax = roundUp(min(n, nc), nr)
	return b
}

// buffers takes the packed A block, the packed B block and an edge tile
// from the pool (putBuf(buf) returns them).
func (b blocking) buffers() (buf *[]float32, ap, bp, tile []float32) {
	na, nb := b.mcMax*b.kcMax, b.kcMax*b.ncMax
	buf = getBuf(na + nb + b.mr*b.nr)
	return buf, (*buf)[:na], (*buf)[na : na+nb], (*buf)[na+nb:][:b.mr*b.nr]
}

// dotRows is the most rows of C that gemmDotRows handles: it reads B once
// per row of A, so beyond a few rows packing B once costs less.
const dotRows = 4

// gemmDotRows is gemmRect for a few rows against a stored n×k B (transB;
// a weight in [out, in] layout, one token at a time): C[i][j] is the dot
// product of A's row i and B's row j, both contiguous in k, so B is read in
// place eight rows at a time by dot8 and never packed. The eight B rows
// stay in L1/L2 while the m rows of A pass over them. Columns past the
// last multiple of 8 use a scalar loop.
func gemmDotRows[T float32 | uint16](transA bool, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b []T, ldb int,
	dot8 func(k int, a []float32, b []T, ldb int, c []float32, alpha, beta float32), conv func(T) float32,
	beta float32, c []float32, ldc int) {
	var rows [dotRows][]float32
	var buf *[]float32
	if transA {
		// op(A)'s rows are stored columns: gather them once.
		buf = getBuf(m * k)
		for i := 0; i < m; i++ {
			row := (*buf)[i*k : i*k+k]
			for p := range row {
				row[p] = a[p*lda+i0+i]
			}
			rows[i] = row
		}
	} else {
		for i := 0; i < m; i++ {
			rows[i] = a[(i0+i)*lda:][:k]
		}
	}
	full := n / 8 * 8
	for jb := 0; jb < full; jb += 8 {
		j := j0 + jb
		for i := 0; i < m; i++ {
			dot8(k, rows[i], b[j*ldb:], ldb, c[(i0+i)*ldc+j:], alpha, beta)
		}
	}
	for j := j0 + full; j < j0+n; j++ {
		brow := b[j*ldb:][:k]
		for i := 0; i < m; i++ {
			var sum float32
			for p, v := range rows[i] {
				sum += v * conv(brow[p])
			}
			ci := &c[(i0+i)*ldc+j]
			if beta == 0 {
				*ci = alpha * sum
			} else {
				*ci = alpha*sum + beta**ci
			}
		}
	}
	if buf != nil {
		putBuf(buf)
	}
}

// gemmFewRows is gemmRect for m <= s.mr rows (one token, a LoRA rank)
// with a row-major float32 B: each B element is used once, so s reads B in
// place instead of a packed copy, and A is packed once per kc block. The
// last columns, short of a whole s.nr strip, go through gemmPacked.
func gemmFewRows(g *gemmImpl, s stridedKernel, transA bool, i0, m, j0, n, k int, alpha float32, a []float32, lda int, b f32Source, beta float32, c []float32, ldc int) {
	mr, nr := s.mr, s.nr
	kcB := g.kc
	if s.kc != 0 && s.kc < kcB {
		kcB = s.kc
	}
	kcMax := min(k, kcB)
	buf := getBuf(mr*kcMax + mr*nr)
	ap := (*buf)[:mr*kcMax]
	tile := (*buf)[mr*kcMax:][:mr*nr]
	full := n / nr * nr
	crow := c[i0*ldc:]
	// k outer: a kc-row slab of B (kc pages at most) is swept across all
	// strips while its TLB entries and the A panel are hot.
	for pc := 0; pc < k; pc += kcB {
		kc := min(kcB, k-pc)
		bt := beta
		if pc > 0 {
			bt = 1
		}
		packA(ap, a, lda, transA, i0, m, pc, kc, mr, g.packRows4)
		bk := b.b[pc*b.ldb:]
		for jr := 0; jr < full; jr += nr {
			j := j0 + jr
			if m == mr {
				s.call(kc, ap, bk[j:], crow[j:], b.ldb, ldc, alpha, bt)
				continue
			}
			s.call(kc, ap, bk[j:], tile, b.ldb, nr, alpha, 0)
			addTile(crow[j:], ldc, tile, nr, m, nr, bt)
		}
	}
	putBuf(buf)
	if full < n {
		gemmPacked(g, transA, i0, m, j0+full, n-full, k, alpha, a, lda, b, beta, c, ldc)
	}
}

// addTile sets c[i*ldc+j] = t[i*nr+j] + beta*c[i*ldc+j] for i < h, j < w;
// beta == 0 overwrites c without reading it.
func addTile(c []float32, ldc int, t []float32, nr, h, w int, beta float32) {
	for i := 0; i < h; i++ {
		dst := c[i*ldc : i*ldc+w]
		src := t[i*nr : i*nr+w]
		if beta == 0 {
			copy(dst, src)
			continue
		}
		for j, v := range src {
			dst[j] = v + beta*dst[j]
		}
	}
}

// scaleC sets C = beta*C; beta == 0 clears C (NaNs included).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		if beta == 1 {
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

func roundUp(x, to int) int { return (x + to - 1) / to * to }

// bufPool recycles packing buffers: a GEMM of a few KFLOP must not pay for
// a fresh allocation, and large ones reuse the same megabytes call after call.
var bufPool sync.Pool

func getBuf(n int) *[]float32 {
	if p, ok := bufPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func putBuf(p *[]float32) { bufPool.Put(p) }
