package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/ftune/ftune/kernels/dropout"
)

// dropoutCheck launches DropoutMask over n elements at byte offset off
// into a buffer poisoned with NaN, with 4 guard elements after the mask,
// and requires the mask to equal dropout.Mask bit for bit and the guard to
// stay poisoned (no element past n written).
func dropoutCheck(t *testing.T, g *gpu, name string, n, off int, key, pos uint64, p float64) {
	t.Helper()
	drop, keep := dropout.Threshold(p)
	const guard = 4
	buf := g.alloc(off + 4*(n+guard))
	m := buf + Ptr(off)
	g.ok(g.d.DropoutMask(g.s, m, key, pos, int64(n), drop, keep))
	got := g.down(m, n+guard, F32)
	want := make([]float32, n)
	dropout.Mask(want, key, pos, drop, keep)
	bad, kept := 0, 0
	for i, w := range want {
		if math.Float32bits(got[i]) != math.Float32bits(w) {
			if bad < 5 {
				t.Errorf("%s: m[%d] = %g (bits %#08x), want %g", name, i, got[i], math.Float32bits(got[i]), w)
			}
			bad++
		}
		if w != 0 {
			kept++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ from dropout.Mask", name, bad, n)
	}
	for i := n; i < n+guard; i++ {
		if b := math.Float32bits(got[i]); b != 0xFFFFFFFF {
			t.Errorf("%s: guard element %d past n written (bits %#08x)", name, i-n, b)
		}
	}
	// A mask that is all kept or all dropped would pass a broken comparison
	// of constants; at these sizes both kinds of element must appear.
	if n >= 1000 && (kept == 0 || kept == n) {
		t.Errorf("%s: %d of %d elements kept", name, kept, n)
	}
	record("dropout_mask_fwd_f32/"+name, n, 0, 0, 0, tol{}, bad == 0)
}

// TestDropoutMask checks dropout.cu against dropout.Mask bit for bit: ragged
// sizes (a partial last draw of 1, 2 or 3 elements, many blocks), position 0
// and one past 2^40 (the 64-bit g+pos and (g+1)·γ products), key 0 and a
// random one, p 0.05 and 0.5.
func TestDropoutMask(t *testing.T) {
	g := needGPU(t)
	keys := []uint64{0, g.rng.Uint64()}
	for _, n := range []int{1, 3, 4, 5, 7, 1023, 4097, 300001} {
		for _, pos := range []uint64{0, 1<<40 + 5} {
			for _, key := range keys {
				for _, p := range []float64{0.05, 0.5} {
					dropoutCheck(t, g, fmt.Sprintf("n%d/pos%d/key%#x/p%g", n, pos, key, p), n, 0, key, pos, p)
				}
			}
		}
	}
}

// TestDropoutMaskStrideAndViews covers the paths TestDropoutMask's sizes do
// not: more draws than the grid has threads (launch1D caps it at 8 blocks of
// 256 per SM, so threads loop), and masks that start 4, 8 or 12 bytes past a
// 16-byte boundary (a view into a larger tensor), where the kernel must not
// take its float4 stores.
func TestDropoutMaskStrideAndViews(t *testing.T) {
	g := needGPU(t)
	key := g.rng.Uint64()
	n := 4*g.d.SMs*8*256 + 4*1000 + 3
	dropoutCheck(t, g, fmt.Sprintf("stride/n%d", n), n, 0, key, 12345, 0.1)
	for _, off := range []int{4, 8, 12} {
		for _, n := range []int{1, 5, 4097} {
			dropoutCheck(t, g, fmt.Sprintf("view+%dB/n%d", off, n), n, off, key, 1<<40+5, 0.5)
		}
	}
}

// TestDropoutMaskArgs checks the launcher's refusals and no-op.
func TestDropoutMaskArgs(t *testing.T) {
	g := needGPU(t)
	m := g.alloc(16)
	if err := g.d.DropoutMask(g.s, m, 1, 0, -1, 100, 1); err == nil {
		t.Error("n = -1 accepted")
	}
	g.ok(g.d.DropoutMask(g.s, m, 1, 0, 0, 100, 1))
	got := g.down(m, 4, F32)
	for i, v := range got {
		if math.Float32bits(v) != 0xFFFFFFFF {
			t.Errorf("n = 0 wrote m[%d] = %g", i, v)
		}
	}
}
