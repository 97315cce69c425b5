package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// readF32 reads a little-endian float32 file of testdata/kquants.
func readF32(t *testing.T, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kquants", name))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// TestKQuantsMatchLlamaCpp: the quantizers write the bytes ggml's
// quantizers write for the same input without an importance matrix (the
// reference quantize_row_*_ref ones; for IQ4_NL and IQ4_XS quantize_iq4_*,
// the full scale search with weights x² that llama-quantize runs), and the
// decoder expands them to ggml's dequantized values bit for bit. The input
// (testdata/kquants/input.f32, 8 super-blocks) holds typical weights,
// outliers, all-positive values (a minimum clamped to 0), zeros, a
// constant, values near 1e-20 (a Q6_K super-block stored as zeros; every
// IQ4_XS scale 0, d stored as −0), half zeros and values near 1e3; the
// goldens come from golden.c beside it.
func TestKQuantsMatchLlamaCpp(t *testing.T) {
	x := readF32(t, "input.f32")
	for _, c := range []struct {
		typ  TensorType
		file string
	}{{Q2_K, "q2_k"}, {Q3_K, "q3_k"}, {Q4_K, "q4_k"}, {Q5_K, "q5_k"}, {Q6_K, "q6_k"}, {Q4_1, "q4_1"}, {Q5_0, "q5_0"}, {Q5_1, "q5_1"}, {IQ4_NL, "iq4_nl"}, {IQ4_XS, "iq4_xs"}} {
		want, err := os.ReadFile(filepath.Join("testdata", "kquants", c.file+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Encode(c.typ, x)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d bytes, ggml wrote %d", c.typ, len(got), len(want))
		}
		values, blockBytes, _ := c.typ.blockInfo()
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: byte %d (block %d, values %d..) = %#02x, ggml wrote %#02x", c.typ, i, i/blockBytes, i/blockBytes*values, got[i], want[i])
				break
			}
		}
		deq, err := Decode(c.typ, want, len(x))
		if err != nil {
			t.Fatal(err)
		}
		ref := readF32(t, c.file+".f32")
		for i := range deq {
			if math.Float32bits(deq[i]) != math.Float32bits(ref[i]) {
				t.Errorf("%s: value %d decodes to %g, ggml's dequantizer gives %g", c.typ, i, deq[i], ref[i])
				break
			}
		}
	}
}

// TestKQuantsError: on weights-like data each type's round-trip error
// ranks as its bits say (Q3_K's 3.4 bits a weight above Q4_0's 4.5), Q4_1
// below Q4_0 (its minimum, 0.5 bits a weight more, fits the block's
// range) but above Q4_K (the 6-bit sub-block scales and minimums earn
// their bytes), and Q5_0 and Q5_1 below Q4_1, with relative RMS errors in
// the ranges llama.cpp's types are known for.
func TestKQuantsError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 64*QK_K)
	for i := range x {
		x[i] = float32(0.02 * r.NormFloat64())
	}
	rel := func(typ TensorType) float64 {
		b, err := Encode(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		y, err := Decode(typ, b, len(x))
		if err != nil {
			t.Fatal(err)
		}
		var se, ss float64
		for i := range x {
			d := float64(y[i] - x[i])
			se += d * d
			ss += float64(x[i]) * float64(x[i])
		}
		return math.Sqrt(se / ss)
	}
	e := map[TensorType]float64{}
	for _, typ := range []TensorType{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		e[typ] = rel(typ)
		t.Logf("%s: relative RMS error %.4f", typ, e[typ])
	}
	order := []TensorType{Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, Q8_0}
	for i := 1; i < len(order); i++ {
		if !(e[order[i]] < e[order[i-1]]) {
			t.Errorf("%s error %.4f not below %s's %.4f", order[i], e[order[i]], order[i-1], e[order[i-1]])
		}
	}
	if !(e[Q5_0] < e[Q4_1]) || !(e[Q5_1] < e[Q4_1]) {
		t.Errorf("5-bit blocks (%.4f, %.4f) not below Q4_1's %.4f", e[Q5_0], e[Q5_1], e[Q4_1])
	}
	// Measured 0.071 and 0.018 on this Gaussian: a bound a little above,
	// so that a quantizer that lost its scale search would fail.
	if e[Q4_K] > 0.08 || e[Q6_K] > 0.022 {
		t.Errorf("Q4_K %.4f or Q6_K %.4f error larger than a 4- or 6-bit code allows", e[Q4_K], e[Q6_K])
	}
}

// TestKQuantMixTypes: each tensor of a k-quant mix (Q4_K_S/M, Q5_K_S/M,
// Q6_K) gets
// the type llama-quantize gives it when it quantizes ftune's F32 export of
// the same model (testdata/kquants/mix-*.json, read from llama-quantize's
// files): on tiny-base (tied embeddings: the embedding table is quantized
// as the LM head; 6 layers, so attn_v and ffn_down of layers 2 and 5 get
// more bits; ffn_down rows of 704 values fall back to 32-value blocks) and
// on phi3-tiny (a fused attn_qkv, a separate LM head, 64-value rows).
func TestKQuantMixTypes(t *testing.T) {
	for _, model := range []struct{ name, dir string }{{"tiny-base", tinyBase}, {"phi3-tiny", phi3Tiny(t)}} {
		m, err := nn.Load(model.dir, nn.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ft := range []FileType{FileQ2_K, FileQ3_K_S, FileQ3_K_M, FileQ3_K_L, FileQ4_K_S, FileQ4_K_M, FileQ5_K_S, FileQ5_K_M, FileQ6_K} {
			b, err := os.ReadFile(filepath.Join("testdata", "kquants", "mix-"+model.name+"-"+ft.String()+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			bl, err := BuildModel(context.Background(), m, nil, Options{FileType: ft}, model.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(bl.tensors) != len(want) {
				t.Fatalf("%s %s: %d tensors, llama-quantize's file has %d", model.name, ft, len(bl.tensors), len(want))
			}
			for _, ti := range bl.tensors {
				if got := ti.typ.String(); got != want[ti.name] {
					t.Errorf("%s %s: %s is %s, llama-quantize makes it %s", model.name, ft, ti.name, got, want[ti.name])
				}
			}
		}
	}
}

// TestKQuantsParallel: a tensor large enough to be quantized by several
// goroutines (appendBlocksParallel) gets the bytes of the one-goroutine
// encoding, appended after what out already held.
func TestKQuantsParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 300*QK_K)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	prefix := []byte("kept")
	for _, c := range []struct {
		typ      TensorType
		quantize func(dst []byte, x []float32) []byte
	}{
		{Q2_K, quantizeQ2_K},
		{Q3_K, quantizeQ3_K},
		{Q4_K, func(dst []byte, x []float32) []byte { return quantizeMinMaxK(dst, x, 4) }},
		{Q5_K, func(dst []byte, x []float32) []byte { return quantizeMinMaxK(dst, x, 5) }},
		{Q6_K, quantizeQ6_K},
		{IQ4_NL, func(dst []byte, x []float32) []byte { return quantizeIQ4(dst, x, nil, QK4_NL) }},
		{IQ4_XS, func(dst []byte, x []float32) []byte { return quantizeIQ4(dst, x, nil, QK_K) }},
	} {
		want := c.quantize(append([]byte(nil), prefix...), x)
		old := runtime.GOMAXPROCS(3) // 3 parts of 100 super-blocks
		got, err := AppendEncoded(append([]byte(nil), prefix...), c.typ, x)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: parallel encoding differs from the serial one", c.typ)
		}
	}
}

// TestTypeNotes: the fallbacks are said, not silent: tiny-base's ffn_down
// rows of 704 values are not whole 256-value blocks, so Q4_K_M stores four
// of them as Q5_0 and two (the more-bits layers) as Q8_0; F16 falls back
// nowhere.
func TestTypeNotes(t *testing.T) {
	m, err := nn.Load(tinyBase, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := TypeNotes(m, Options{FileType: FileQ4_K_M})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Q4_K_M: 4 weights whose rows are not whole 256-value blocks are stored as Q5_0 instead of Q4_K, as llama.cpp stores them: blk.0.ffn_down.weight (rows of 704) and 3 more",
		"Q4_K_M: 2 weights whose rows are not whole 256-value blocks are stored as Q8_0 instead of Q6_K, as llama.cpp stores them: blk.2.ffn_down.weight (rows of 704) and 1 more",
	}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}
	if notes, err := TypeNotes(m, Options{FileType: FileF16}); err != nil || notes != nil {
		t.Errorf("F16: %q, %v; want no notes", notes, err)
	}
}
