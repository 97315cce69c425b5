package export

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// writeF16Model writes writeRandomModel's model with every tensor in
// float16, as many Hugging Face models are stored.
func writeF16Model(t testing.TB) string {
	t.Helper()
	dir := writeRandomModel(t)
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range set.Names() {
		st, err := set.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		f := make([]float32, len(st.Data)/4)
		for i := range f {
			f[i] = math.Float32frombits(binary.LittleEndian.Uint32(st.Data[4*i:]))
		}
		data, err := encodeFloats(f, safetensors.F16)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F16, Shape: st.Shape, Data: data})
	}
	set.Close()
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A merged export keeps an f16 base's dtype: an adapter whose update takes
// a weight beyond f16's ±65504 (which would be written as Inf, and the
// model then fails with non-finite logits) is refused naming the tensor,
// the value and the type, and nothing is written.
func TestMergedHFRefusesValuesBeyondF16(t *testing.T) {
	base := writeF16Model(t)
	m := load(t, base, nn.LoadOptions{})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := MergedHFWith(context.Background(), m, a, base, out, MergedOptions{}); err != nil {
		t.Fatalf("an ordinary adapter on an f16 base: %v", err)
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	mod := a.Modules()[0]
	b := a.Layers[mod].B.Value
	vals := b.F32()
	for i := range vals {
		vals[i] = 1e6
	}
	b.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, b.Shape()...).To(b.DType()))
	_, err := MergedHFWith(context.Background(), m, a, base, out, MergedOptions{})
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), mod+".weight") || !strings.Contains(err.Error(), "F16") || !strings.Contains(err.Error(), "bf16") {
		t.Fatalf("merged f16 export with lora_B 1e6: err %v, want ErrOutOfRange naming %s.weight, F16 and bf16", err, mod)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Fatalf("the refused export left %d file(s) beside %s", len(ents), out)
	}
}
