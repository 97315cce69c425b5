package nf4

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCodeMatchesNormalQuantiles rebuilds the NF4 table the way QLoRA
// defines it (bitsandbytes' create_normal_map(offset=0.9677083,
// use_extra_value=True)): 8 positive quantiles norm.ppf(linspace(offset,
// 0.5, 9)[:-1]), 7 negative ones from linspace(offset, 0.5, 8)[:-1], a zero,
// sorted and divided by the largest. The linspace is float32 as in torch;
// norm.ppf(p) = √2·erfinv(2p-1). Agreement within 2e-7 absolute: the table's
// float32 rounding (≤ 6e-8) plus scipy-vs-Go ppf differences (~1e-15).
func TestCodeMatchesNormalQuantiles(t *testing.T) {
	const offset = 0.9677083
	ppf := func(p float32) float64 { return math.Sqrt2 * math.Erfinv(2*float64(p)-1) }
	var vals []float64
	for _, p := range linspace32(offset, 0.5, 9)[:8] {
		vals = append(vals, ppf(p))
	}
	for _, p := range linspace32(offset, 0.5, 8)[:7] {
		vals = append(vals, -ppf(p))
	}
	vals = append(vals, 0)
	f32 := make([]float32, len(vals))
	for i, v := range vals {
		f32[i] = float32(v)
	}
	sortF32(f32)
	top := f32[len(f32)-1]
	for i := range f32 {
		want := f32[i] / top
		if math.Abs(float64(Code[i]-want)) > 2e-7 {
			t.Errorf("Code[%d] = %.9g, normal quantile gives %.9g", i, Code[i], want)
		}
	}
	if Code[0] != -1 || Code[7] != 0 || Code[15] != 1 {
		t.Errorf("Code ends/zero = %v %v %v, want -1 0 1", Code[0], Code[7], Code[15])
	}
}

// TestQuantizeNF4MatchesBucketize checks the unrolled search and the grid
// lookup against a plain bucketize, on random values, on every midpoint and
// grid edge and their float32 neighbours (a midpoint itself must take the
// lower code).
func TestQuantizeNF4MatchesBucketize(t *testing.T) {
	xs := []float32{-1, 1, 0, -0, 1e-38, -1e-38, math.Nextafter32(-1, 0), math.Nextafter32(1, 0)}
	for _, b := range codeBounds {
		xs = append(xs, b, math.Nextafter32(b, -2), math.Nextafter32(b, 2))
	}
	// The grid edges of quantizeNF4Fast and their neighbours.
	for c := 0; c <= gridCells; c++ {
		e := float32(c)/(gridCells/2) - 1
		xs = append(xs, e, math.Nextafter32(e, -2), math.Nextafter32(e, 2))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		xs = append(xs, float32(rng.Float64()*2-1))
	}
	for _, x := range xs {
		want := byte(bucketize(codeBounds[:], x))
		if got := quantizeNF4(x); got != want {
			t.Fatalf("quantizeNF4(%v) = %d, bucketize %d", x, got, want)
		}
		if got := quantizeNF4Fast(x); got != want {
			t.Fatalf("quantizeNF4Fast(%v) = %d, bucketize %d", x, got, want)
		}
	}
	for i, b := range codeBounds {
		if got := quantizeNF4(b); got != byte(i) {
			t.Errorf("midpoint %d (%v) quantized to %d, want the lower code %d", i, b, got, i)
		}
	}
}

// TestDynamicMap checks values derived by hand from create_dynamic_map:
// the largest magnitude below 1 is the midpoint of the last two points of
// linspace(0.1, 1, 65): (0.9859375+1)/2 = 0.99296875; the smallest non-zero
// is 1e-6 · (0.1+1)/2 = 5.5e-7.
func TestDynamicMap(t *testing.T) {
	m := DynamicMap()
	for i := 1; i < len(m); i++ {
		if !(m[i] > m[i-1]) {
			t.Fatalf("dynamic map not strictly increasing at %d: %v, %v", i, m[i-1], m[i])
		}
	}
	checks := []struct {
		i    int
		want float64
	}{{0, -0.99296875}, {126, -5.5e-7}, {127, 0}, {128, 5.5e-7}, {254, 0.99296875}, {255, 1}}
	for _, c := range checks {
		if math.Abs(float64(m[c.i])-c.want) > 1e-6*math.Abs(c.want) { // float32 rounding; 0 exact
			t.Errorf("DynamicMap()[%d] = %.9g, want %.9g", c.i, m[c.i], c.want)
		}
	}
	// 10^(i-6) decades: 2^i values each side, so 64 values in (0.1, 1).
	n := 0
	for _, v := range m {
		if v > 0.1 && v < 1 {
			n++
		}
	}
	if n != 64 {
		t.Errorf("%d values in (0.1, 1), want 64", n)
	}
}

// TestDequantBlock compares DequantBlock (whatever implementation is
// registered) with the Go reference at sizes around a block, at unaligned
// offsets, with NaN guards around the output.
func TestDequantBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	nan := float32(math.NaN())
	for _, n := range []int{0, 1, 2, 15, 16, 31, 32, 33, 64, 127, 1000} {
		for off := 0; off < 4; off++ {
			packed := make([]byte, n+off)
			for i := range packed {
				packed[i] = byte(rng.IntN(256))
			}
			packed = packed[off:]
			got := make([]float32, 2*n+off+8)
			for i := range got {
				got[i] = nan
			}
			want := make([]float32, 2*n)
			am := float32(rng.Float64() * 3)
			DequantBlock(got[off+4:off+4+2*n], packed, am)
			DequantBlockGeneric(want, packed, am)
			for i := 0; i < off+4; i++ {
				if !math.IsNaN(float64(got[i])) {
					t.Fatalf("n=%d off=%d: guard before output overwritten at %d", n, off, i)
				}
			}
			for i := off + 4 + 2*n; i < len(got); i++ {
				if !math.IsNaN(float64(got[i])) {
					t.Fatalf("n=%d off=%d: guard after output overwritten at %d", n, off, i)
				}
			}
			for i, w := range want {
				if got[off+4+i] != w {
					t.Fatalf("n=%d off=%d: element %d = %v, reference %v", n, off, i, got[off+4+i], w)
				}
				// The reference itself: code of the right nibble times absmax.
				nib := packed[i/2] >> 4
				if i%2 == 1 {
					nib = packed[i/2] & 15
				}
				if w != Code[nib]*am {
					t.Fatalf("reference element %d = %v, want Code[%d]*%v", i, w, nib, am)
				}
			}
		}
	}
}
