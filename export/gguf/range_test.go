package gguf

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/tensor"
)

// A finite value that f16 or bf16 cannot hold is refused, naming the value
// and the type and pointing at the types with the range: rounded, it would
// be written as Inf.
func TestEncodeRefusesValuesBeyondTheRange(t *testing.T) {
	if _, err := Encode(F16, []float32{1, -65504, 65519}); err != nil {
		t.Fatalf("f16's largest values: %v", err)
	}
	for _, c := range []struct {
		typ TensorType
		v   float32
	}{{F16, 1e5}, {F16, -65520}, {BF16, math.MaxFloat32}} {
		_, err := Encode(c.typ, []float32{0, c.v})
		if !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), "value 1 is") || !strings.Contains(err.Error(), c.typ.String()) || !strings.Contains(err.Error(), "bf16 or f32") {
			t.Errorf("%v as %s: err %v, want ErrOutOfRange naming the value, the type and bf16 or f32", c.v, c.typ, err)
		}
	}
	if _, err := Encode(F16, []float32{float32(math.NaN())}); !errors.Is(err, export.ErrNonFinite) {
		t.Errorf("NaN as F16: err %v, want ErrNonFinite", err)
	}
}

// Every block type keeps its scale (and minimum) in f16: finite values
// large enough make it overflow, which is refused, with or without an
// importance matrix; values just inside are written.
func TestEncodeRefusesBlockScalesBeyondF16(t *testing.T) {
	const n = 256
	// Values that Q8_0's and Q4_0's f16 scales still hold (d = amax/127
	// overflows past 8.3e6, d = m/-8 past 524k); -1e12 is beyond any.
	fits := map[TensorType]float32{Q8_0: 8e6, Q4_0: 5e5}
	for _, typ := range []TensorType{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS} {
		x := make([]float32, 2*n)
		for i := range x {
			x[i] = float32(math.Sin(float64(i))) * 0.05
		}
		if v, ok := fits[typ]; ok {
			x[n+3] = v
			if _, err := Encode(typ, x); err != nil {
				t.Errorf("%s of %v: %v", typ, v, err)
			}
		}
		x[n+3] = -1e12
		_, err := Encode(typ, x)
		if !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), "-1e+12") || !strings.Contains(err.Error(), "bf16 or f32") {
			t.Errorf("%s of -1e12: err %v, want ErrOutOfRange naming the value", typ, err)
		}
		// The weighted quantizers write their own blocks: the builder
		// checks what any producer gives it.
		qw := make([]float32, n)
		for i := range qw {
			qw[i] = 1 + float32(i%7)
		}
		data, err := AppendEncodedWeighted(nil, typ, x, n, qw)
		if err != nil { // Q8_0 has no weighted quantizer: AppendEncoded's check
			if !errors.Is(err, export.ErrOutOfRange) {
				t.Errorf("%s weighted, of -1e12: err %v, want ErrOutOfRange", typ, err)
			}
			continue
		}
		b := NewBuilder("llama")
		if err := b.AddTensorBytesFunc("w", []int{2, n}, typ, func() ([]byte, error) { return data, nil }); err != nil {
			t.Fatal(err)
		}
		if err := b.Write(io.Discard); !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), `"w"`) {
			t.Errorf("%s weighted, of -1e12: err %v, want ErrOutOfRange naming the tensor", typ, err)
		}
	}
}

// A model weight of 1e5 in the default f16 export, and a LoRA adapter's
// lora_B beyond f16, are refused naming the tensor; nothing is written.
func TestExportRefusesWeightsBeyondF16(t *testing.T) {
	m, tok, _ := loadTiny(t)
	w := m.Params()["model.layers.0.self_attn.q_proj.weight"].Value
	vals := w.F32()
	vals[7] = 1e5
	w.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, w.Shape()...).To(w.DType()))
	dir := t.TempDir()
	model := filepath.Join(dir, "model.gguf")
	err := WriteModelWith(context.Background(), model, m, tok, Options{FileType: FileF16})
	if !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), "blk.0.attn_q.weight") || !strings.Contains(err.Error(), "100000") {
		t.Fatalf("f16 export of a weight of 1e5: err %v, want ErrOutOfRange naming blk.0.attn_q.weight and the value", err)
	}
	if err := WriteModelWith(context.Background(), model, m, tok, Options{FileType: FileBF16}); err != nil {
		t.Fatalf("bf16 has the range: %v", err)
	}
	if err := os.Remove(model); err != nil {
		t.Fatal(err)
	}

	m, _, _ = loadTiny(t)
	a := randomAdapter(t, m, lora.NewConfig(4, 8, "q_proj"))
	mod := a.Modules()[0]
	b := a.Layers[mod].B.Value
	bv := b.F32()
	bv[0] = 1e6
	b.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, bv, b.Shape()...).To(b.DType()))
	adapter := filepath.Join(dir, "adapter.gguf")
	if err := WriteLoRA(adapter, m, a, FileF16); !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), ".lora_b") {
		t.Fatalf("f16 LoRA with lora_B 1e6: err %v, want ErrOutOfRange naming the lora_b tensor", err)
	}
	if err := WriteModelWith(context.Background(), model, m, tok, Options{FileType: FileF16, Adapter: a}); !errors.Is(err, export.ErrOutOfRange) || !strings.Contains(err.Error(), "blk.") {
		t.Fatalf("f16 model merged with lora_B 1e6: err %v, want ErrOutOfRange naming the tensor", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the refused exports left %d file(s) in %s", len(ents), dir)
	}
}
