package nf4

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func normalData(n int, std float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * std)
	}
	return w
}

// TestNibbleOrder: the first element of a pair is in the high nibble, and an
// odd count leaves the last low nibble zero. [0.5, 1, -1] in one short block
// of absmax 1: 0.5 lies below the midpoint (0.4407+0.5626)/2 = 0.5017 so it
// is code 12; 1 is code 15; -1 is code 0. Bytes: 0xCF, 0x00.
func TestNibbleOrder(t *testing.T) {
	q, err := QuantizeWith([]float32{0.5, 1, -1}, []int{3}, Options{BlockSize: 64, DType: "float32"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Packed) != 2 || q.Packed[0] != 0xCF || q.Packed[1] != 0x00 {
		t.Fatalf("packed = % x, want cf 00", q.Packed)
	}
	if q.Absmax[0] != 1 {
		t.Errorf("absmax %v, want 1", q.Absmax[0])
	}
	got := make([]float32, 3)
	q.Dequantize(got)
	want := []float32{Code[12], 1, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("dequantized[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestExactCodesRoundTrip: values that are code values times the block's
// absmax come back exactly without double quantization.
func TestExactCodesRoundTrip(t *testing.T) {
	w := make([]float32, 128)
	for i := range w {
		scale := float32(2.5)
		if i >= 64 {
			scale = 0.125
		}
		w[i] = Code[(i*7)%16] * scale
	}
	w[0], w[64] = 2.5, -0.125 // make each block's absmax the scale
	q, err := QuantizeWith(w, []int{2, 64}, Options{BlockSize: 64, DType: "bfloat16"})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(w))
	q.Dequantize(got)
	for i := range w {
		if got[i] != w[i] {
			t.Fatalf("element %d: %v -> %v", i, w[i], got[i])
		}
	}
}

// roundTripStats returns the RMS error divided by the RMS of w, and the
// largest error divided by its block's absmax.
func roundTripStats(q *Weight, w []float32) (relRMSE, maxErrOverAbsmax float64) {
	got := make([]float32, len(w))
	q.Dequantize(got)
	var se, ss float64
	for i := range w {
		d := float64(got[i] - w[i])
		se += d * d
		ss += float64(w[i]) * float64(w[i])
		am := float64(absMax(w[i/q.BlockSize*q.BlockSize : min(len(w), (i/q.BlockSize+1)*q.BlockSize)]))
		if am > 0 {
			maxErrOverAbsmax = math.Max(maxErrOverAbsmax, math.Abs(d)/am)
		}
	}
	return math.Sqrt(se / ss), maxErrOverAbsmax
}

// TestRoundTripNormal measures the round-trip error on N(0, 0.02) data.
// Bounds: without double quantization an element is off by at most half the
// widest code gap, (1-0.6961928)/2 = 0.1519 of its block's absmax (the gap
// between the two most negative codes); double quantization perturbs the
// absmax by at most half a dynamic-map step of the nested scale (≤ 0.7%
// here), which moves a dequantized value by up to 0.7% of absmax more:
// 0.1519·1.007 + 0.007 < 0.165. The relative
// RMS error of NF4 on Gaussian blocks of 64 is about 0.09-0.10 (QLoRA); 0.11
// fails if the wrong code or rounding is used.
func TestRoundTripNormal(t *testing.T) {
	shape := []int{256, 1024}
	w := normalData(shape[0]*shape[1], 0.02, 11)
	for _, dq := range []bool{false, true} {
		q, err := QuantizeWith(w, shape, Options{BlockSize: 64, DoubleQuant: dq, DType: "float32"})
		if err != nil {
			t.Fatal(err)
		}
		rel, maxErr := roundTripStats(q, w)
		t.Logf("N(0,0.02) %v double-quant=%v: relative RMSE %.5f, max |err|/absmax %.4f, %.4f bytes/param",
			shape, dq, rel, maxErr, float64(q.StorageBytes())/float64(len(w)))
		limit := 0.1519037
		if dq {
			limit = 0.165
		}
		if maxErr > limit {
			t.Errorf("double-quant=%v: max error %.4f of absmax exceeds %.4f", dq, maxErr, limit)
		}
		if rel > 0.11 || rel < 0.05 {
			t.Errorf("double-quant=%v: relative RMSE %.4f outside [0.05, 0.11]", dq, rel)
		}
		if dq {
			// The absmax recovered from the double quantization is within
			// half a step of the dynamic map (largest step 0.0141 near ±1)
			// times the nested absmax of its group.
			for b := 0; b < q.NumBlocks(); b++ {
				am := absMax(w[b*64 : (b+1)*64])
				tol := 0.0071*q.NestedAbsmax[b/256] + 1e-9
				if d := math.Abs(float64(q.BlockAbsmax(b) - am)); d > float64(tol) {
					t.Fatalf("block %d: absmax %v recovered as %v (tol %v)", b, am, q.BlockAbsmax(b), tol)
				}
			}
		}
	}
}

// TestBytesPerParam: 0.5 (two values per byte) + 1/64 (uint8 absmax) +
// 4/16384 (float32 nested absmax per 256 blocks) = 0.515869 for a
// 1024 x 4096 linear; bitsandbytes quotes about 0.516.
func TestBytesPerParam(t *testing.T) {
	shape := []int{1024, 4096}
	n := shape[0] * shape[1]
	w := normalData(n, 1, 12)
	q, err := Quantize(w, shape)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.5 + 1.0/64 + 4.0/(64*256)
	got := float64(q.StorageBytes()) / float64(n)
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("bytes/param %.6f, want %.6f", got, want)
	}
	all := float64(q.TensorBytes()) / float64(n)
	t.Logf("1024x4096 NF4+double quant: %.6f bytes/param (scales included), %.6f with code maps and quant state", got, all)
	if all-got > 0.001 {
		t.Errorf("per-tensor constants cost %.6f bytes/param, want < 0.001 at this size", all-got)
	}
	q2, _ := QuantizeWith(w, shape, Options{BlockSize: 64, DType: "float32"})
	if got := float64(q2.StorageBytes()) / float64(n); math.Abs(got-0.5625) > 1e-12 {
		t.Errorf("without double quant: %.6f bytes/param, want 0.5625", got)
	}
}

// TestDequantizeRows compares row panels and arbitrary ranges with the full
// dequantization, on a shape whose rows do not align with blocks (45
// columns: blocks straddle rows, rows start on odd elements) and on an
// aligned one.
func TestDequantizeRows(t *testing.T) {
	for _, shape := range [][]int{{7, 45}, {5, 128}, {3, 1, 33}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := normalData(n, 1, 13)
		q, err := Quantize(w, shape)
		if err != nil {
			t.Fatal(err)
		}
		full := make([]float32, n)
		q.Dequantize(full)
		cols := n / shape[0]
		for r0 := 0; r0 < shape[0]; r0++ {
			for nr := 0; r0+nr <= shape[0]; nr++ {
				got := make([]float32, nr*cols+1)
				got[nr*cols] = 42 // guard
				q.DequantizeRows(got, r0, nr)
				for i := 0; i < nr*cols; i++ {
					if got[i] != full[r0*cols+i] {
						t.Fatalf("%v rows [%d,+%d) element %d: %v, full %v", shape, r0, nr, i, got[i], full[r0*cols+i])
					}
				}
				if got[nr*cols] != 42 {
					t.Fatalf("%v rows [%d,+%d): wrote past the panel", shape, r0, nr)
				}
			}
		}
		for s := 0; s < n; s += 3 {
			e := min(n, s+s%97+1)
			got := make([]float32, e-s)
			q.DequantizeRange(got, s, e)
			for i := range got {
				if got[i] != full[s+i] {
					t.Fatalf("%v range [%d,%d) element %d: %v, full %v", shape, s, e, i, got[i], full[s+i])
				}
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	cases := []struct {
		name  string
		w     []float32
		shape []int
		opt   Options
	}{
		{"shape mismatch", make([]float32, 10), []int{3, 3}, DefaultOptions()},
		{"negative dim", nil, []int{-1, 0}, DefaultOptions()},
		{"NaN", []float32{1, float32(math.NaN())}, []int{2}, DefaultOptions()},
		{"Inf", []float32{float32(math.Inf(1)), 1}, []int{2}, DefaultOptions()},
		{"block size", make([]float32, 4), []int{4}, Options{BlockSize: 48, DType: "float32"}},
		{"dtype", make([]float32, 4), []int{4}, Options{BlockSize: 64, DType: "int8"}},
	}
	for _, c := range cases {
		if _, err := QuantizeWith(c.w, c.shape, c.opt); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// In a weight large enough for the parallel split, the error names the
	// first non-finite element, wherever the blocks were quantized.
	big := make([]float32, 64*4096+10)
	for i := range big {
		big[i] = float32(i%17) - 8
	}
	big[64*3000+5] = float32(math.Inf(-1))
	big[64*3000+9] = float32(math.NaN())
	big[64*4096+3] = float32(math.NaN())
	if _, err := Quantize(big, []int{len(big)}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("element %d is -Inf", 64*3000+5)) {
		t.Errorf("non-finite weight: error %v, want one naming element %d", err, 64*3000+5)
	}
	// All-zero blocks and an empty tensor are valid.
	q, err := Quantize(make([]float32, 130), []int{130})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 130)
	q.Dequantize(got)
	for i, v := range got {
		if v != 0 {
			t.Fatalf("zero tensor dequantized to %v at %d", v, i)
		}
	}
	if _, err := Quantize(nil, []int{0, 16}); err != nil {
		t.Errorf("empty tensor: %v", err)
	}
}

// TestParallelQuantizeMatchesSerial: the goroutine split (used from 1024
// blocks on) gives the same bytes and scales as one serial pass.
func TestParallelQuantizeMatchesSerial(t *testing.T) {
	const n = 3000*64 + 17 // a short last block, odd length
	w := normalData(n, 1, 41)
	q, err := QuantizeWith(w, []int{n}, Options{BlockSize: 64, DType: "float32"})
	if err != nil {
		t.Fatal(err)
	}
	packed := make([]byte, (n+1)/2)
	for b := 0; b*64 < n; b++ {
		lo, hi := b*64, min(b*64+64, n)
		if am := quantizeBlock(packed, w[lo:hi], lo, hi-lo == 64); am != q.Absmax[b] {
			t.Fatalf("block %d absmax %v, serial %v", b, q.Absmax[b], am)
		}
	}
	for i := range packed {
		if packed[i] != q.Packed[i] {
			t.Fatalf("byte %d: %#x, serial %#x", i, q.Packed[i], packed[i])
		}
	}
}

// absMax on the values' bits gives what the float comparison gives: the
// largest magnitude (+0 for zeros of either sign), at every length the
// four-lane loop and its tail split differently, and a non-finite result
// for a block holding a NaN or an infinity.
func TestAbsMaxMatchesFloatComparison(t *testing.T) {
	reference := func(x []float32) float32 {
		var m float32
		for _, v := range x {
			m = max(m, float32(math.Abs(float64(v))))
		}
		return m
	}
	rng := rand.New(rand.NewPCG(3, 4))
	specials := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32, 1e-40, -3.5}
	for n := 0; n < 70; n++ {
		x := make([]float32, n)
		for i := range x {
			if rng.IntN(4) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			} else {
				x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-4)))
			}
		}
		if got, want := absMax(x), reference(x); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("n=%d: absMax = %v, want %v (%v)", n, got, want, x)
		}
		if n == 0 {
			continue
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			y := slices.Clone(x)
			y[rng.IntN(n)] = bad
			if isFinite(absMax(y)) {
				t.Fatalf("n=%d: absMax of a block holding %v is finite: %v", n, bad, absMax(y))
			}
		}
	}
}
