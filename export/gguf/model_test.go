package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// ropeHalf is Hugging Face's rotary embedding of one head (rotate_half:
// element i turns with element i+d/2).
func ropeHalf(q []float64, pos int, base float64) []float64 {
	d := len(q)
	out := make([]float64, d)
	for i := 0; i < d/2; i++ {
		th := float64(pos) * math.Pow(base, -2*float64(i)/float64(d))
		c, s := math.Cos(th), math.Sin(th)
		out[i] = q[i]*c - q[i+d/2]*s
		out[i+d/2] = q[i+d/2]*c + q[i]*s
	}
	return out
}

// ropeNorm is ggml's rope mode 0 ("normal"), which llama.cpp's llama
// architecture uses: elements 2i and 2i+1 turn together.
func ropeNorm(q []float64, pos int, base float64) []float64 {
	d := len(q)
	out := make([]float64, d)
	for i := 0; i < d/2; i++ {
		th := float64(pos) * math.Pow(base, -2*float64(i)/float64(d))
		c, s := math.Cos(th), math.Sin(th)
		out[2*i] = q[2*i]*c - q[2*i+1]*s
		out[2*i+1] = q[2*i]*s + q[2*i+1]*c
	}
	return out
}

// TestPermuteQKMatchesRoPE: a permuted q_proj under llama.cpp's RoPE gives
// the permuted result of Hugging Face's RoPE on the original, for every
// head; attention scores (dot products of q and k permuted alike) are then
// equal. This is why the converter permutes.
func TestPermuteQKMatchesRoPE(t *testing.T) {
	const heads, d, cols = 3, 8, 5
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, heads*d*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	x := make([]float64, cols)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	pw, err := PermuteQK(w, heads, cols)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := UnpermuteQK(pw, heads, cols)
	if !reflect.DeepEqual(back, w) {
		t.Fatal("UnpermuteQK does not invert PermuteQK")
	}
	matvec := func(w []float32) []float64 {
		out := make([]float64, heads*d)
		for r := range out {
			for c := 0; c < cols; c++ {
				out[r] += float64(w[r*cols+c]) * x[c]
			}
		}
		return out
	}
	q, pq := matvec(w), matvec(pw)
	for h := 0; h < heads; h++ {
		for _, pos := range []int{0, 1, 7, 100} {
			hf := ropeHalf(q[h*d:(h+1)*d], pos, 10000)
			gg := ropeNorm(pq[h*d:(h+1)*d], pos, 10000)
			// gg must equal hf with the same row permutation applied.
			for i := 0; i < d/2; i++ {
				for j := 0; j < 2; j++ {
					if a, b := gg[2*i+j], hf[j*d/2+i]; math.Abs(a-b) > 1e-12 {
						t.Fatalf("head %d pos %d: llama.cpp row %d = %v, Hugging Face row %d = %v", h, pos, 2*i+j, a, j*d/2+i, b)
					}
				}
			}
		}
	}
	if _, err := PermuteQK(make([]float32, 3*5), 1, 5); err == nil {
		t.Fatal("odd head dimension: no error")
	}
}

func TestTensorName(t *testing.T) {
	for hf, want := range map[string]string{
		"model.embed_tokens.weight":                       "token_embd.weight",
		"lm_head.weight":                                  "output.weight",
		"model.norm.weight":                               "output_norm.weight",
		"model.layers.0.input_layernorm.weight":           "blk.0.attn_norm.weight",
		"model.layers.11.post_attention_layernorm.weight": "blk.11.ffn_norm.weight",
		"model.layers.3.self_attn.q_proj.weight":          "blk.3.attn_q.weight",
		"model.layers.3.self_attn.k_proj.bias":            "blk.3.attn_k.bias",
		"model.layers.3.self_attn.v_proj.weight":          "blk.3.attn_v.weight",
		"model.layers.3.self_attn.o_proj.weight":          "blk.3.attn_output.weight",
		"model.layers.3.mlp.gate_proj.weight":             "blk.3.ffn_gate.weight",
		"model.layers.3.mlp.up_proj.weight":               "blk.3.ffn_up.weight",
		"model.layers.3.mlp.down_proj.weight":             "blk.3.ffn_down.weight",
	} {
		if got, err := TensorName(hf); err != nil || got != want {
			t.Errorf("%s → %q, %v; want %q", hf, got, err, want)
		}
	}
	for _, bad := range []string{"model.layers.x.mlp.up_proj.weight", "model.layers.1.foo.weight", "head.weight"} {
		if _, err := TensorName(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// checkValues compares a file tensor with the original float32 values
// (already in the file's row order) within the type's stated error.
func checkValues(t *testing.T, name string, typ TensorType, raw []byte, got, want []float32) {
	t.Helper()
	switch typ {
	case F32:
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v, want %v (F32 is exact)", name, i, got[i], want[i])
			}
		}
	case F16:
		for i := range want {
			if w := tensor.F16ToF32(tensor.F32ToF16(want[i])); got[i] != w {
				t.Fatalf("%s[%d] = %v, want f16(%v) = %v", name, i, got[i], want[i], w)
			}
		}
	case Q8_0, Q4_0:
		bs := 34
		if typ == Q4_0 {
			bs = 18
		}
		for b := 0; b < len(want)/32; b++ {
			d := math.Abs(float64(tensor.F16ToF32(binary.LittleEndian.Uint16(raw[b*bs:]))))
			bound := d/2 + 128*f16Err(d) // Q8_0: half a step
			if typ == Q4_0 {
				bound = d + 9*f16Err(d) // Q4_0: a step (clamp at +7)
			}
			for j := b * 32; j < (b+1)*32; j++ {
				if e := math.Abs(float64(got[j] - want[j])); e > bound {
					t.Fatalf("%s[%d] = %v, want %v ± %g (%s, d = %g)", name, j, got[j], want[j], bound, typ, d)
				}
			}
		}
	case Q6_K:
		// The k-quant's own bytes are held to ggml's elsewhere
		// (TestKQuantsMatchLlamaCpp): here, that the values written are
		// the tensor's, quantized.
		enc, err := Encode(Q6_K, want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, enc) {
			t.Fatalf("%s: Q6_K bytes are not the quantized tensor's", name)
		}
	default:
		t.Fatalf("%s: unexpected type %s", name, typ)
	}
}

func TestWriteModelTinyBase(t *testing.T) {
	m, tok, tmpl := loadTiny(t)
	params := m.Params()
	for _, ft := range []FileType{FileF32, FileF16, FileQ8_0, FileQ4_0} {
		t.Run(ft.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tiny.gguf")
			if err := WriteModel(path, m, tok, tmpl, ft); err != nil {
				t.Fatal(err)
			}
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			wantU := map[string]uint64{
				"llama.context_length": 1024, "llama.embedding_length": 256, "llama.block_count": 6,
				"llama.feed_forward_length": 704, "llama.attention.head_count": 8, "llama.attention.head_count_kv": 4,
				"llama.vocab_size": 4096, "llama.rope.dimension_count": 32, "llama.attention.key_length": 32,
				"general.file_type": uint64(ft), "general.alignment": 32, "general.quantization_version": 2,
				"tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 0, "tokenizer.ggml.padding_token_id": 3,
			}
			for k, want := range wantU {
				if got, ok := f.Uint(k); !ok || got != want {
					t.Errorf("%s = %v (%v), want %d", k, got, ok, want)
				}
			}
			for k, want := range map[string]float64{"llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 1e4} {
				if got, ok := f.Float(k); !ok || got != float64(float32(want)) {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			for k, want := range map[string]string{
				"general.architecture": "llama", "general.type": "model", "general.name": "tiny",
				"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.chat_template": tmpl,
			} {
				if got, _ := f.String(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			toks, _ := f.Get("tokenizer.ggml.tokens")
			types, _ := f.Get("tokenizer.ggml.token_type")
			merges, _ := f.Get("tokenizer.ggml.merges")
			if ts, ok := toks.([]string); !ok || len(ts) != 4096 || ts[1] != "<|im_start|>" {
				t.Fatalf("tokens: %T of %d", toks, len(ts))
			} else if id, _ := tok.TokenToID(ts[300]); id != 300 {
				t.Fatalf("token 300 %q maps back to %d", ts[300], id)
			}
			if ty, ok := types.([]int32); !ok || ty[0] != TokenControl || ty[3] != TokenControl || ty[300] != TokenNormal {
				t.Fatalf("token types %v", types)
			}
			if ms, ok := merges.([]string); !ok || len(ms) != 3836 || ms[0] != "Ġ t" {
				t.Fatalf("merges: %d, first %q", len(ms), ms[0])
			}
			if add, _ := f.Get("tokenizer.ggml.add_bos_token"); add != false {
				t.Errorf("add_bos_token = %v; tiny-base's post-processor adds nothing", add)
			}
			// 1 embedding + 6 blocks of 9 + output_norm; tied, so no output.weight.
			if len(f.Tensors) != 56 {
				t.Fatalf("%d tensors, want 56", len(f.Tensors))
			}
			if _, ok := f.Tensor("output.weight"); ok {
				t.Fatal("tied embeddings: output.weight written")
			}
			wt, _ := ft.TensorType()
			for hf, v := range params {
				gname, _ := TensorName(hf)
				ti, ok := f.Tensor(gname)
				if !ok {
					t.Fatalf("no tensor %s for %s", gname, hf)
				}
				shape := v.Value.Shape()
				if !reflect.DeepEqual(ti.Shape(), []int(shape)) {
					t.Fatalf("%s shape %v, want %v", gname, ti.Shape(), shape)
				}
				wantType := typeFor(shape, wt)
				if ft == FileQ4_0 && gname == "token_embd.weight" {
					wantType = Q6_K // the head (tied), as llama-quantize's Q4_0 mix stores it
				}
				if ti.Type != wantType {
					t.Fatalf("%s type %s, want %s", gname, ti.Type, wantType)
				}
				want := v.Value.F32()
				switch {
				case strings.HasSuffix(hf, "q_proj.weight"):
					want, _ = PermuteQK(want, 8, 256)
				case strings.HasSuffix(hf, "k_proj.weight"):
					want, _ = PermuteQK(want, 4, 256)
				}
				raw, _ := f.Raw(gname)
				got, err := f.Float32(gname)
				if err != nil {
					t.Fatal(err)
				}
				checkValues(t, gname, ti.Type, raw, got, want)
			}
		})
	}
}

// TestWriteModelQwen2: qwen2 keeps the Hugging Face row order (no
// permutation), writes the q/k/v biases, and an untied head as
// output.weight.
func TestWriteModelQwen2(t *testing.T) {
	dir := writeRandomModel(t, map[string]any{"model_type": "qwen2", "architectures": []string{"Qwen2ForCausalLM"}})
	m, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := loadTiny(t)
	path := filepath.Join(t.TempDir(), "q.gguf")
	if err := WriteModel(path, m, tok, "", FileF32); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, _ := f.String("general.architecture"); a != "qwen2" {
		t.Fatalf("architecture %q", a)
	}
	if _, ok := f.Get("tokenizer.chat_template"); ok {
		t.Fatal("empty chat template written")
	}
	for hf, v := range m.Params() {
		gname, _ := TensorName(hf)
		got, err := f.Float32(gname)
		if err != nil {
			t.Fatalf("%s: %v", hf, err)
		}
		if !reflect.DeepEqual(got, v.Value.F32()) {
			t.Fatalf("%s (%s) differs from the model: qwen2 must not be permuted", gname, hf)
		}
	}
	for _, n := range []string{"blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.1.attn_v.bias", "output.weight"} {
		if ti, ok := f.Tensor(n); !ok || (strings.HasSuffix(n, "bias") && ti.Type != F32) {
			t.Fatalf("%s: %v %v", n, ok, ti.Type)
		}
	}
}

// TestWriteModelFallbackAndRope: rows that do not fill Q4_0 blocks fall
// back to F16 (hidden 48), and llama3 RoPE scaling adds rope_freqs.
func TestWriteModelFallbackAndRope(t *testing.T) {
	dir := writeRandomModel(t, map[string]any{
		"hidden_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2,
		"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 64},
	})
	m, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildModel(context.Background(), m, nil, Options{FileType: FileQ4_0}, "x")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]TensorType{}
	for _, bt := range b.tensors {
		types[bt.name] = bt.typ
	}
	// attn_q rows have 48 values (not whole blocks): F16; ffn_down rows
	// have intermediate_size 96 values: Q4_0.
	if types["blk.0.attn_q.weight"] != F16 || types["blk.0.ffn_down.weight"] != Q4_0 || types["blk.0.attn_norm.weight"] != F32 {
		t.Fatalf("types: attn_q %s, ffn_down %s, attn_norm %s", types["blk.0.attn_q.weight"], types["blk.0.ffn_down.weight"], types["blk.0.attn_norm.weight"])
	}
	rf, ok := types["rope_freqs.weight"]
	if !ok || rf != F32 {
		t.Fatal("llama3 rope: no F32 rope_freqs.weight")
	}
	f := llama3RopeFactors(m.Config)
	// head_dim 12: wavelengths 2π·10000^(2i/12); short ones keep 1, the
	// longest (> 64) get the factor 8.
	if len(f) != 6 || f[0] != 1 || f[5] != 8 {
		t.Fatalf("rope factors %v", f)
	}
}

func TestWriteLoRA(t *testing.T) {
	m, _, _ := loadTiny(t)
	c := lora.NewConfig(8, 16, "q_proj", "k_proj", "v_proj", "down_proj")
	// rank_pattern gives v_proj another rank and alpha_pattern another
	// alpha: llama.cpp's single alpha must be corrected per module.
	c.RankPattern = []lora.Pattern{{Key: "v_proj", Value: 4}}
	c.AlphaPattern = []lora.Pattern{{Key: "down_proj", Value: 4}}
	a := randomAdapter(t, m, c)
	for _, ft := range []FileType{FileF32, FileF16} {
		path := filepath.Join(t.TempDir(), "a.gguf")
		if err := WriteLoRA(path, m, a, ft); err != nil {
			t.Fatal(err)
		}
		f, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := f.String("general.type"); s != "adapter" {
			t.Fatalf("general.type %q", s)
		}
		if s, _ := f.String("adapter.type"); s != "lora" {
			t.Fatalf("adapter.type %q", s)
		}
		alpha, _ := f.Float("adapter.lora.alpha")
		if alpha != 16 {
			t.Fatalf("alpha %v", alpha)
		}
		if len(f.Tensors) != 2*len(a.Layers) {
			t.Fatalf("%d tensors for %d layers", len(f.Tensors), len(a.Layers))
		}
		for _, mod := range a.Modules() {
			gname, _ := TensorName(mod + ".weight")
			ta, okA := f.Tensor(gname + ".lora_a")
			tb, okB := f.Tensor(gname + ".lora_b")
			if !okA || !okB {
				t.Fatalf("%s: lora_a %v lora_b %v", gname, okA, okB)
			}
			ly := a.Layers[mod]
			r := ly.A.Value.Dim(0)
			if !reflect.DeepEqual(ta.Shape(), []int(ly.A.Value.Shape())) || !reflect.DeepEqual(tb.Shape(), []int(ly.B.Value.Shape())) {
				t.Fatalf("%s: shapes %v %v", gname, ta.Shape(), tb.Shape())
			}
			av, _ := f.Float32(gname + ".lora_a")
			bv, _ := f.Float32(gname + ".lora_b")
			switch {
			case strings.HasSuffix(mod, "q_proj"):
				bv, _ = UnpermuteQK(bv, 8, r)
			case strings.HasSuffix(mod, "k_proj"):
				bv, _ = UnpermuteQK(bv, 4, r)
			}
			// llama.cpp's update: (alpha/r)·B·A, with r from lora_b.
			out, in := tb.Shape()[0], ta.Shape()[1]
			want := ly.Delta().F32()
			var maxErr, maxRef float64
			for i := 0; i < out; i++ {
				for j := 0; j < in; j++ {
					var s float64
					for k := 0; k < r; k++ {
						s += float64(bv[i*r+k]) * float64(av[k*in+j])
					}
					s *= alpha / float64(r)
					maxErr = math.Max(maxErr, math.Abs(s-float64(want[i*in+j])))
					maxRef = math.Max(maxRef, math.Abs(float64(want[i*in+j])))
				}
			}
			// F32: float32 products summed over r ≤ 8 terms: 1e-6 relative.
			// F16: A and B each rounded to 11 bits: 2·2^-11 relative to the
			// largest term, a few times over the sum: 1e-2 of the largest.
			tol := 1e-6 * maxRef
			if ft == FileF16 {
				tol = 1e-2 * maxRef
			}
			if maxErr > tol {
				t.Errorf("%s %s: |llama.cpp update − PEFT update| = %g > %g", ft, mod, maxErr, tol)
			}
		}
		f.Close()
	}
}

func TestWriteModelErrors(t *testing.T) {
	m, tok, _ := loadTiny(t)
	if err := WriteModel(filepath.Join(t.TempDir(), "x.gguf"), m, tok, "", FileType(99)); err == nil {
		t.Error("unknown file type: no error")
	}
	c := m.Config
	c.ModelType = "gpt_neox"
	m2 := *m
	m2.Config = c
	if err := WriteModel(filepath.Join(t.TempDir(), "x.gguf"), &m2, tok, "", FileF16); err == nil || !strings.Contains(err.Error(), "gpt_neox") {
		t.Errorf("gpt_neox: %v", err)
	}
	tied := lora.NewConfig(4, 8, "lm_head")
	a, err := lora.New(m, tied, "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLoRA(filepath.Join(t.TempDir(), "l.gguf"), m, a, FileF16); err == nil || !strings.Contains(err.Error(), "tied") {
		t.Errorf("adapter on a tied lm_head: %v", err)
	}
}

// TestWrittenByFtune: models and LoRAs ftune writes carry its mark, and
// nothing else is taken for one of them (a GGUF without the mark, another
// file, a missing path): an export replaces only its own files.
func TestWrittenByFtune(t *testing.T) {
	m, tok, _ := loadTiny(t)
	dir := t.TempDir()
	model, adapter := filepath.Join(dir, "m.gguf"), filepath.Join(dir, "a.gguf")
	if err := WriteModel(model, m, tok, "", FileF16); err != nil {
		t.Fatal(err)
	}
	if err := WriteLoRA(adapter, m, randomAdapter(t, m, lora.NewConfig(4, 8, "q_proj")), FileF16); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.gguf")
	if err := NewBuilder("llama").WriteFile(other); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("GGUF is not enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{model: true, adapter: true, other: false, text: false, filepath.Join(dir, "absent"): false} {
		if got := WrittenByFtune(path); got != want {
			t.Errorf("WrittenByFtune(%s) = %v, want %v", filepath.Base(path), got, want)
		}
	}
}
