package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
)

// writeRandomModel writes a small float32 Llama model folder with an untied
// lm_head and normal random weights; it returns the folder.
func writeRandomModel(t testing.TB) string {
	t.Helper()
	const H, I, V, L, heads, kv = 64, 96, 512, 2, 4, 2
	hd := H / heads
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": H, "intermediate_size": I, "num_hidden_layers": L,
		"num_attention_heads": heads, "num_key_value_heads": kv, "vocab_size": V,
		"max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
		"tie_word_embeddings": false, "torch_dtype": "float32",
	}
	dir := t.TempDir()
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}, "lm_head.weight": {V, H}}
	for i := 0; i < L; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		shapes[p+"input_layernorm.weight"] = []int{H}
		shapes[p+"post_attention_layernorm.weight"] = []int{H}
		shapes[p+"self_attn.q_proj.weight"] = []int{heads * hd, H}
		shapes[p+"self_attn.k_proj.weight"] = []int{kv * hd, H}
		shapes[p+"self_attn.v_proj.weight"] = []int{kv * hd, H}
		shapes[p+"self_attn.o_proj.weight"] = []int{H, heads * hd}
		shapes[p+"mlp.gate_proj.weight"] = []int{I, H}
		shapes[p+"mlp.up_proj.weight"] = []int{I, H}
		shapes[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	rng := rand.New(rand.NewPCG(21, 22))
	var ts []safetensors.Tensor
	for name, shape := range shapes {
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
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}
