package gguf

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

// tinyBase is the shipped default model (llama, bf16, tied embeddings).
var tinyBase = filepath.Join("..", "..", "assets", "models", "tiny-base")

func loadTiny(t testing.TB) (*nn.Model, *tokenizer.Tokenizer, string) {
	t.Helper()
	m, err := nn.Load(tinyBase, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(tinyBase, "chat_template.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, string(tmpl)
}

// randomAdapter makes an adapter whose B is random too, so its update is
// not zero.
func randomAdapter(t testing.TB, m *nn.Model, c *lora.Config) *lora.Adapter {
	t.Helper()
	c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
	a, err := lora.New(m, c, "test", 7)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// writeRandomModel writes a model folder with config cfg (extra keys over a
// small Llama-family default) and normal random weights of the shapes the
// config implies, in float32; it returns the folder.
func writeRandomModel(t testing.TB, extra map[string]any) string {
	t.Helper()
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096,
		"max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
		"tie_word_embeddings": false, "torch_dtype": "float32",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	dir := t.TempDir()
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := nn.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	var ts []safetensors.Tensor
	for name, shape := range shapesOf(c) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.05)))
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: data})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shapesOf lists the parameters of a Llama-family config (what nn.Load
// expects), written here rather than taken from nn so that a mistake there
// cannot hide one here.
func shapesOf(c nn.Config) map[string][]int {
	H, I, V := c.HiddenSize, c.IntermediateSize, c.VocabSize
	q, kv := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	if !c.TieEmbeddings {
		s["lm_head.weight"] = []int{V, H}
	}
	for i := 0; i < c.NumLayers; i++ {
		p := "model.layers." + itoa(i) + "."
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		s[p+"self_attn.q_proj.weight"] = []int{q, H}
		s[p+"self_attn.k_proj.weight"] = []int{kv, H}
		s[p+"self_attn.v_proj.weight"] = []int{kv, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, q}
		s[p+"mlp.gate_proj.weight"] = []int{I, H}
		s[p+"mlp.up_proj.weight"] = []int{I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
		if c.AttentionBias {
			s[p+"self_attn.q_proj.bias"] = []int{q}
			s[p+"self_attn.k_proj.bias"] = []int{kv}
			s[p+"self_attn.v_proj.bias"] = []int{kv}
		}
		if c.OutputBias {
			s[p+"self_attn.o_proj.bias"] = []int{H}
		}
		if c.QKNorm {
			s[p+"self_attn.q_norm.weight"] = []int{c.HeadDim}
			s[p+"self_attn.k_norm.weight"] = []int{c.HeadDim}
		}
	}
	return s
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
