package gguf

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var writeInputs = flag.Bool("write-inputs", false, "write testdata/kquants/importance.f32 and weights.f32 from importanceInput and weightsInput (then rerun golden.c)")

// importanceInput is testdata/kquants/importance.f32, the importance
// matrix of the weighted goldens: 1024 columns (rows of 4 super-blocks)
// spread over 8 decades (2⁻¹⁷..2¹¹, made with Ldexp so that no platform's
// math library could round them differently), a run of 10 zeros across a
// 16-value sub-block boundary (columns 300-309) and a whole 32-value block
// of zeros (columns 160-191: sub-blocks whose fits have no weight at all).
func importanceInput() []float32 {
	r := rand.New(rand.NewPCG(2026, 13))
	imp := make([]float32, 1024)
	for i := range imp {
		imp[i] = float32(math.Ldexp(1+r.Float64(), r.IntN(28)-17))
	}
	clear(imp[300:310])
	clear(imp[160:192])
	return imp
}

// weightsInput is testdata/kquants/weights.f32, the second input of the
// weighted goldens: 8 rows of 1024 weights-like values, each a sum of 4
// uniforms (about Gaussian) scaled by 2⁻⁸..2⁻³ at random (heavy tails),
// again by exact arithmetic only. input.f32 is mostly corner cases; these
// rows take the fits' searches down their common paths. The seed is the
// one of 14..23 whose fits need the most passes of make_qp_quants'
// level moving (a fourth, for a Q2_K super-block).
func weightsInput() []float32 {
	r := rand.New(rand.NewPCG(2026, 21))
	x := make([]float32, 8*1024)
	for i := range x {
		v := r.Float64() + r.Float64() + r.Float64() + r.Float64() - 2
		x[i] = float32(math.Ldexp(v, r.IntN(6)-8))
	}
	return x
}

// checkInput fails t unless testdata/kquants/NAME holds exactly want,
// after writing it there under -write-inputs.
func checkInput(t *testing.T, name string, want []float32) {
	t.Helper()
	if *writeInputs {
		b := make([]byte, 0, 4*len(want))
		for _, v := range want {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		if err := os.WriteFile(filepath.Join("testdata", "kquants", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored := readF32(t, name)
	if len(stored) != len(want) {
		t.Fatalf("%s holds %d values, its generator gives %d", name, len(stored), len(want))
	}
	for i := range want {
		if math.Float32bits(stored[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d is %g, its generator gives %g", name, i, stored[i], want[i])
		}
	}
}

// weightedGoldens are the types ggml quantizes with an importance matrix
// and their files in testdata/kquants.
var weightedGoldens = []struct {
	typ  TensorType
	file string
}{{Q2_K, "q2_k"}, {Q3_K, "q3_k"}, {Q4_K, "q4_k"}, {Q5_K, "q5_k"}, {Q6_K, "q6_k"}, {Q4_0, "q4_0"}, {Q4_1, "q4_1"}, {Q5_0, "q5_0"}, {Q5_1, "q5_1"}, {IQ4_NL, "iq4_nl"}, {IQ4_XS, "iq4_xs"}}

// TestWeightedQuantsMatchLlamaCpp: with an importance matrix the
// quantizers write the bytes of ggml's quantize_TYPE (what llama-quantize
// runs with an imatrix), for rows of 1024 values and importance.f32
// (importanceInput) as the matrix; the goldens come from golden.c. The
// rows are input.f32's 2 (TYPE-imatrix.bin; row 0 holds its typical
// weights, outliers, all-positive values and zeros, row 1 its constant,
// values near 1e-20, half zeros and values near 1e3) and weights.f32's 8
// (weightsInput; TYPE-imatrix-weights.bin). The blocks decode to finite
// values.
func TestWeightedQuantsMatchLlamaCpp(t *testing.T) {
	const rowLen = 1024
	imp := importanceInput()
	checkInput(t, "importance.f32", imp)
	checkInput(t, "weights.f32", weightsInput())
	for _, in := range []struct{ input, suffix string }{{"input.f32", "-imatrix"}, {"weights.f32", "-imatrix-weights"}} {
		x := readF32(t, in.input)
		for _, c := range weightedGoldens {
			want, err := os.ReadFile(filepath.Join("testdata", "kquants", c.file+in.suffix+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendEncodedWeighted(nil, c.typ, x, rowLen, imp)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, %s: %d bytes, ggml wrote %d", in.input, c.typ, len(got), len(want))
			}
			values, blockBytes, _ := c.typ.blockInfo()
			for i := range got {
				if got[i] != want[i] {
					blk := i / blockBytes
					t.Errorf("%s, %s: byte %d (block %d, values %d.., row %d) = %#02x, ggml wrote %#02x", in.input, c.typ, i, blk, blk*values, blk*values/rowLen, got[i], want[i])
					break
				}
			}
			y, err := Decode(c.typ, want, len(x))
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Errorf("%s, %s: value %d decodes to %v", in.input, c.typ, i, v)
					break
				}
			}
		}
	}
}

// TestWeightedQuantsErrors: rows that are not whole blocks, values that
// are not whole rows, an importance matrix of another length, a negative
// or non-finite importance and a non-finite value are errors that name
// their numbers.
func TestWeightedQuantsErrors(t *testing.T) {
	x := make([]float32, 2*QK_K)
	imp := make([]float32, QK_K)
	for i := range imp {
		imp[i] = 1
	}
	withImp := func(i int, v float32) []float32 {
		w := append([]float32(nil), imp...)
		w[i] = v
		return w
	}
	nan := float32(math.NaN())
	for _, c := range []struct {
		typ    TensorType
		x      []float32
		rowLen int
		imp    []float32
		want   string
	}{
		{Q4_K, x, 100, imp[:100], "rows of 100 values are not whole Q4_K blocks of 256"},
		{Q4_0, x, 48, imp[:48], "rows of 48 values are not whole Q4_0 blocks of 32"},
		{Q4_K, x, 0, nil, "rows of 0 values"},
		{Q4_K, x[:QK_K], 2 * QK_K, nil, "256 values are not whole rows of 512"},
		{Q6_K, x, QK_K, imp[:QK_K-1], "255 importance values for rows of 256"},
		{Q5_0, x, QK_K, withImp(7, -1), "importance of column 7 is -1"},
		{Q2_K, x, QK_K, withImp(9, nan), "importance of column 9 is NaN"},
		{Q8_0, x, QK_K, withImp(3, float32(math.Inf(1))), "importance of column 3 is +Inf"},
		{Q3_K, append([]float32{nan}, x[1:]...), QK_K, imp, "value 0 is NaN; Q3_K cannot hold it"},
		{TensorType(99), x, QK_K, imp, "not supported"},
	} {
		_, err := AppendEncodedWeighted(nil, c.typ, c.x, c.rowLen, c.imp)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s, rows of %d: error %v, want one saying %q", c.typ, c.rowLen, err, c.want)
		}
	}
}

// TestWeightedQuantsIgnored: nil importance is AppendEncoded, and the
// types without a weighted quantizer (F32, F16, BF16, Q8_0) ignore it, as
// ggml's do; the types with one write other bytes than without it.
func TestWeightedQuantsIgnored(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 4*QK_K)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	imp := make([]float32, 2*QK_K)
	for i := range imp {
		imp[i] = float32(r.ExpFloat64())
	}
	for _, typ := range []TensorType{F32, F16, BF16, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS} {
		plain, err := AppendEncoded([]byte("kept"), typ, x)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendEncodedWeighted([]byte("kept"), typ, x, len(imp), nil)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: nil importance gives other bytes than AppendEncoded (%v)", typ, err)
		}
		got, err = AppendEncodedWeighted([]byte("kept"), typ, x, len(imp), imp)
		if err != nil {
			t.Fatal(err)
		}
		if weighted := weightedQuantizer(typ) != nil; bytes.Equal(got, plain) == weighted {
			t.Errorf("%s: bytes with an importance matrix equal AppendEncoded's: %v, want %v", typ, !weighted, weighted)
		}
	}
}

// TestWeightedQuantsParallel: rows spread over several goroutines
// (appendParallel) get the bytes of quantizing them one after the
// other, appended after what out already held.
func TestWeightedQuantsParallel(t *testing.T) {
	const rowLen, rows = 8 * QK_K, 24 // 192 super-blocks: 3 parts of 8 rows
	r := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, rows*rowLen)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	imp := make([]float32, rowLen)
	for i := range imp {
		imp[i] = float32(r.ExpFloat64())
	}
	prefix := []byte("kept")
	for _, c := range weightedGoldens {
		quantize := weightedQuantizer(c.typ)
		want := append([]byte(nil), prefix...)
		for row := range rows {
			want = quantize(want, x[row*rowLen:(row+1)*rowLen], imp)
		}
		old := runtime.GOMAXPROCS(3)
		got, err := AppendEncodedWeighted(append([]byte(nil), prefix...), c.typ, x, rowLen, imp)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: parallel encoding differs from the serial one", c.typ)
		}
	}
}

// TestWeightedQuantsHelp: on Gaussian weights with a skewed importance
// (log-normal, a few columns dominating) the importance-weighted squared
// error Σ importance·(x − x̂)² of the weighted quantization is well below
// the unweighted one's, for every type (measured 0.35 for Q2_K to 0.61 for
// Q6_K: the bound is a little above, so that weights that reached the
// fits only in part would fail).
func TestWeightedQuantsHelp(t *testing.T) {
	const rowLen, rows = 4 * QK_K, 8
	r := rand.New(rand.NewPCG(9, 10))
	x := make([]float32, rows*rowLen)
	for i := range x {
		x[i] = float32(0.02 * r.NormFloat64())
	}
	imp := make([]float32, rowLen)
	for i := range imp {
		imp[i] = float32(math.Exp(2 * r.NormFloat64()))
	}
	weightedError := func(typ TensorType, b []byte) float64 {
		y, err := Decode(typ, b, len(x))
		if err != nil {
			t.Fatal(err)
		}
		var e float64
		for i := range x {
			d := float64(y[i] - x[i])
			e += float64(imp[i%rowLen]) * d * d
		}
		return e
	}
	for _, c := range weightedGoldens {
		plain, err := Encode(c.typ, x)
		if err != nil {
			t.Fatal(err)
		}
		weighted, err := AppendEncodedWeighted(nil, c.typ, x, rowLen, imp)
		if err != nil {
			t.Fatal(err)
		}
		ratio := weightedError(c.typ, weighted) / weightedError(c.typ, plain)
		t.Logf("%s: importance-weighted error with / without the matrix %.3f", c.typ, ratio)
		if !(ratio < 0.7) {
			t.Errorf("%s: weighting by importance lowers the weighted error too little (ratio %.3f)", c.typ, ratio)
		}
	}
}
