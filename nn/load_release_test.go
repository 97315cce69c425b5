package nn

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/tensor"
)

// releaseRecorder is a safetensors set that counts the loader's Release
// calls per tensor.
type releaseRecorder struct {
	*safetensors.Set
	released map[string]int
}

func (r *releaseRecorder) Release(name string) {
	r.released[name]++
	r.Set.Release(name)
}

// The loader releases each tensor's file pages once it has copied the
// tensor out, and the conversions that reuse one scratch buffer (NF4
// quantization, bf16, float64) give every tensor its own values: a
// buffer reused too early would give a tensor its neighbour's.
func TestLoadReleasesTensorsAndKeepsTheirValues(t *testing.T) {
	cfgJSON := modelConfigs["head_dim"] // biases and untied lm_head: every kind of tensor
	ws := randomWeights(t, cfgJSON, 11)
	// Store bf16, as released checkpoints are, so the bf16 path is a copy
	// and the float32 ones widen.
	want := map[string][]float32{}
	for i, w := range ws {
		f, err := safetensors.Floats(w)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 2*len(f))
		for j, v := range f {
			binary.LittleEndian.PutUint16(b[2*j:], tensor.F32ToBF16(v))
			f[j] = tensor.BF16ToF32(tensor.F32ToBF16(v))
		}
		ws[i] = safetensors.Tensor{Name: w.Name, DType: safetensors.BF16, Shape: w.Shape, Data: b}
		want[w.Name] = f
	}
	dir := writeFolder(t, cfgJSON, ws)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	quantized := map[string][]float32{}
	cases := map[string]LoadOptions{
		"f32":       {},
		"bf16":      {DType: tensor.BF16},
		"keep-bf16": {KeepBF16: true},
		"f64":       {DType: tensor.F64},
		"quantize": {Quantize: func(name string, w []float32, shape []int) (*tensor.Tensor, error) {
			quantized[name] = slices.Clone(w)
			return tensor.FromF32(tensor.CPUDefault(), slices.Clone(w), shape...), nil
		}},
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			set, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			rec := &releaseRecorder{Set: set, released: map[string]int{}}
			m, err := build(context.Background(), cfg, rec, opt, filepath.Base(dir))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if n := rec.released[w.Name]; n != 1 {
					t.Errorf("tensor %s released %d times, want once", w.Name, n)
				}
			}
			for pname, v := range m.Params() {
				got := v.Value.F32()
				if opt.Quantize != nil && isProjection(pname) {
					got = quantized[pname]
				}
				if !slices.Equal(got, want[pname]) {
					t.Errorf("%s: values differ from the file's", pname)
				}
			}
		})
	}
}
