package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/quant/nf4"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// tinyBase is the shipped default model (llama, bf16 weights, tied
// embeddings).
var tinyBase = filepath.Join("..", "assets", "models", "tiny-base")

func load(t testing.TB, dir string, opt nn.LoadOptions) *nn.Model {
	t.Helper()
	m, err := nn.Load(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// adapter makes a LoRA on every projection with random A and B, so the
// merge changes every weight it touches.
func adapter(t testing.TB, m *nn.Model) *lora.Adapter {
	t.Helper()
	c := lora.NewConfig(8, 16, "all-linear")
	c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
	a, err := lora.New(m, c, "test", 3)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var prompt = []int64{0, 1, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64}

func logits(t testing.TB, m *nn.Model) []float32 {
	t.Helper()
	ids := tensor.FromHost(m.Backend, tensor.I64, prompt, 1, len(prompt))
	out, err := m.Forward(nil, nn.Batch{InputIDs: ids}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Logits.Value.F32()
}

// TestMergedHFTinyBase: the merged folder loads with nn.Load, its weights
// are exactly bf16(W + s·B·A), and its logits match the model with the
// adapter attached within bf16 rounding.
func TestMergedHFTinyBase(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "merged")
	res, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{MaxShardBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res.DType != "bfloat16" || len(res.Notes) != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, f := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json", "model.safetensors"} {
		if !slices.Contains(res.Files, f) {
			t.Errorf("%s missing from %v", f, res.Files)
		}
	}
	for _, f := range []string{"tokenizer.json", "chat_template.jinja"} {
		a, _ := os.ReadFile(filepath.Join(tinyBase, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if string(a) != string(b) {
			t.Errorf("%s not copied verbatim", f)
		}
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("folder mode %v, %v; want 0755", st.Mode(), err)
	}
	if cfg["dtype"] != "bfloat16" || cfg["torch_dtype"] != "bfloat16" || cfg["hidden_size"] != 256.0 {
		t.Fatalf("config: dtype %v torch_dtype %v hidden %v", cfg["dtype"], cfg["torch_dtype"], cfg["hidden_size"])
	}

	// Every weight bit-exact: bf16 of the float32 sum, stored as bf16.
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Has("lm_head.weight") || !f.Has("model.embed_tokens.weight") {
		t.Fatal("tied embeddings: lm_head.weight written or embed_tokens missing")
	}
	src, _ := NewSource(m, a)
	adapted := 0
	for _, name := range f.Names() {
		st, _ := f.Tensor(name)
		if st.DType != safetensors.BF16 {
			t.Fatalf("%s stored %s, the base stores bf16", name, st.DType)
		}
		w := m.Params()[name].Value.F32()
		if ly := a.Layers[strings.TrimSuffix(name, ".weight")]; ly != nil {
			adapted++
			d := ly.Delta().F32()
			for i := range w {
				w[i] += d[i]
			}
		}
		for i, v := range w {
			if got, want := binary.LittleEndian.Uint16(st.Data[2*i:]), tensor.F32ToBF16(v); got != want {
				t.Fatalf("%s[%d] = bf16 %#04x, want %#04x (bf16 of %v)", name, i, got, want, v)
			}
		}
		if src.Adapted(name) != (a.Layers[strings.TrimSuffix(name, ".weight")] != nil) {
			t.Fatalf("%s: Adapted disagrees", name)
		}
	}
	if adapted != 42 { // 6 layers × 7 projections
		t.Fatalf("%d adapted weights, want 42", adapted)
	}

	// Logits: the adapter model computes W·x + s·B·(A·x) in float32; the
	// merged model uses bf16(W + s·B·A), each weight off by up to 2^-9
	// relative. Measured on this prompt (amd64, AVX2) the largest logit
	// difference is 0.049 while the adapter itself moves logits by 6.0;
	// the limit 0.15 is three times the measurement (other summation
	// orders), and a missing or wrong merge (an error of the size of the
	// update) still fails.
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := logits(t, m)
	lora.Detach(m)
	base := logits(t, m)
	merged := logits(t, load(t, out, nn.LoadOptions{}))
	var maxDiff, maxUpdate float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(merged[i]-want[i])))
		maxUpdate = math.Max(maxUpdate, math.Abs(float64(base[i]-want[i])))
	}
	t.Logf("max |merged − adapter| logit = %.4g; the adapter moves logits by up to %.4g", maxDiff, maxUpdate)
	if maxDiff > 0.15 {
		t.Fatalf("merged logits differ from the adapter model's by %g (> 0.15)", maxDiff)
	}
	if maxUpdate < 1 {
		t.Fatalf("the adapter changes logits by only %g: the test cannot tell a merge from none", maxUpdate)
	}
}

// TestMergedHFSharded: above the limit the weights go to numbered shards
// with an index, which nn.Load reads back to the same values as a single
// file; a re-export replaces the folder (no stale single file).
func TestMergedHFSharded(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{})
	a := adapter(t, m)
	dir := t.TempDir()
	single := filepath.Join(dir, "single")
	if err := MergedHF(m, a, tinyBase, single, 0); err != nil {
		t.Fatal(err)
	}
	sharded := filepath.Join(dir, "sharded")
	if err := MergedHF(m, a, tinyBase, sharded, 0); err != nil {
		t.Fatal(err)
	}
	// Re-export over the previous folder, now sharded at 3 MB (the model
	// is 11 MB of bf16: 4 or more shards).
	res, err := MergedHFWith(context.Background(), m, a, tinyBase, sharded, MergedOptions{MaxShardBytes: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	shards := 0
	for _, f := range res.Files {
		if strings.HasPrefix(f, "model-") && strings.HasSuffix(f, ".safetensors") {
			shards++
		}
	}
	if shards < 4 || !slices.Contains(res.Files, "model.safetensors.index.json") || slices.Contains(res.Files, "model.safetensors") {
		t.Fatalf("files after sharding: %v", res.Files)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	raw, _ := os.ReadFile(filepath.Join(sharded, "model.safetensors.index.json"))
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.WeightMap) != len(m.Params()) {
		t.Fatalf("index: %d entries, %v", len(idx.WeightMap), err)
	}
	ms, mh := load(t, single, nn.LoadOptions{}), load(t, sharded, nn.LoadOptions{})
	hp := mh.Params()
	for name, v := range ms.Params() {
		if !slices.Equal(v.Value.F32(), hp[name].Value.F32()) {
			t.Fatalf("%s differs between the single file and the shards", name)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("temporary folders left beside the exports: %v", ents)
	}
}

// TestMergedHFNF4: an NF4 base is dequantized before merging, the result
// says so, and the weights are bf16(dequant(W) + s·B·A).
func TestMergedHFNF4(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{Quantize: nf4.Quantizer(tensor.CPUDefault())})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "m")
	res, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{MaxShardBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "NF4") {
		t.Fatalf("notes %q: the NF4 dequantization is not mentioned", res.Notes)
	}
	mm := load(t, out, nn.LoadOptions{})
	name := "model.layers.2.mlp.down_proj"
	w := m.Params()[name+".weight"].Value.F32() // dequantized NF4
	d := a.Layers[name].Delta().F32()
	got := mm.Params()[name+".weight"].Value.F32()
	for i := range w {
		if want := tensor.BF16ToF32(tensor.F32ToBF16(w[i] + d[i])); got[i] != want {
			t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want)
		}
	}
	if m.Params()[name+".weight"].Value.DType() != tensor.NF4 {
		t.Fatal("the model's weight is no longer NF4: MergedHF changed the model")
	}
}

// TestMergedHFFloat32Untied: a float32 base stays float32 (exact sums),
// an untied lm_head is written, and without an adapter the export equals
// the base.
func TestMergedHFFloat32Untied(t *testing.T) {
	base := writeRandomModel(t)
	m := load(t, base, nn.LoadOptions{})
	out := filepath.Join(t.TempDir(), "m")
	res, err := MergedHFWith(context.Background(), m, nil, base, out, MergedOptions{MaxShardBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res.DType != "float32" {
		t.Fatalf("dtype %s", res.DType)
	}
	bs, _ := safetensors.Open(filepath.Join(base, "model.safetensors"))
	es, _ := safetensors.Open(filepath.Join(out, "model.safetensors"))
	defer bs.Close()
	defer es.Close()
	if !slices.Equal(bs.Names(), es.Names()) || !es.Has("lm_head.weight") {
		t.Fatalf("names %v vs %v", bs.Names(), es.Names())
	}
	for _, n := range bs.Names() {
		x, _ := bs.Tensor(n)
		y, _ := es.Tensor(n)
		if string(x.Data) != string(y.Data) || y.DType != safetensors.F32 {
			t.Fatalf("%s differs from the base", n)
		}
	}
}

func TestMergedHFRefusesForeignFolder(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{})
	out := t.TempDir()
	keep := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MergedHF(m, nil, tinyBase, out, 0); err == nil {
		t.Fatal("a folder of other files was replaced")
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatal("the user's file was touched")
	}
	if err := MergedHF(m, nil, tinyBase, tinyBase+string(filepath.Separator), 0); err == nil || !strings.Contains(err.Error(), "base model's folder") {
		t.Fatalf("export over the base folder: %v", err)
	}
	c := lora.NewConfig(4, 8, "lm_head")
	a, err := lora.New(m, c, "head", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := MergedHF(m, a, tinyBase, filepath.Join(t.TempDir(), "x"), 0); err == nil || !strings.Contains(err.Error(), "tie") {
		t.Fatalf("adapter on a tied lm_head: %v", err)
	}
}

// A model held in bf16 (as `ftune export` loads it) merges the same way:
// the weights the adapter leaves are written as the base stores them,
// without the float32 round trip (Source.BF16Bytes), the adapted ones as
// bf16(W + s·B·A); and a NaN in an unadapted bf16 weight is still refused.
func TestMergedHFBF16Model(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	if m.Embed.Value.DType() != tensor.BF16 {
		t.Fatalf("embeddings loaded as %s, want bf16", m.Embed.Value.DType())
	}
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{}); err != nil {
		t.Fatal(err)
	}
	base, err := safetensors.OpenDir(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, _ := NewSource(m, a)
	raw := 0
	for _, name := range f.Names() {
		got, _ := f.Tensor(name)
		if !src.Adapted(name) && m.Params()[name].Value.DType() == tensor.BF16 {
			raw++
			want, _ := base.Tensor(name)
			if !bytes.Equal(got.Data, want.Data) {
				t.Errorf("%s: unadapted bf16 weight not written as the base stores it", name)
			}
			continue
		}
		w := m.Params()[name].Value.F32()
		if ly := a.Layers[strings.TrimSuffix(name, ".weight")]; ly != nil {
			d := ly.Delta().F32()
			for i := range w {
				w[i] += d[i]
			}
		}
		for i, v := range w {
			if g, want := binary.LittleEndian.Uint16(got.Data[2*i:]), tensor.F32ToBF16(v); g != want {
				t.Fatalf("%s[%d] = bf16 %#04x, want %#04x", name, i, g, want)
			}
		}
	}
	if raw == 0 {
		t.Fatal("no unadapted bf16 weight: the raw path was not exercised")
	}

	tensor.U16Data(m.Embed.Value)[77] = 0x7fc0 // NaN
	_, err = MergedHFWith(context.Background(), m, a, tinyBase, filepath.Join(t.TempDir(), "nan"), MergedOptions{})
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "model.embed_tokens.weight") || !strings.Contains(err.Error(), "element 77") {
		t.Errorf("NaN in the bf16 embeddings: error %v, want ErrNonFinite naming the tensor and element 77", err)
	}
}
