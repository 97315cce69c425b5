package parity

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
)

// TestPhi3NF4FusedMergeAndPEFT: Phi-3's fused projections through QLoRA,
// PEFT files and the merged export.
//   - Loaded in NF4, qkv_proj and gate_up_proj are each one NF4 tensor (as
//     bitsandbytes quantizes the fused nn.Linear), and the model computes
//     what the dequantized float32 weights compute.
//   - An all-linear adapter targets PEFT's module names for phi3 (qkv_proj,
//     o_proj, gate_up_proj, down_proj; PEFT's
//     TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING has no phi3 entry,
//     so these are the names a PEFT user lists), and its
//     adapter_model.safetensors holds those names.
//   - Merged into the NF4 base, the Hugging Face folder keeps the fused
//     layout and computes what the NF4 model with the adapter computes.
func TestPhi3NF4FusedMergeAndPEFT(t *testing.T) {
	q, err := nn.Load(phi3Tiny(t), nn.LoadOptions{Quantize: nf4.Quantizer(tensor.CPUDefault())})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range q.Layers[0].Linears() {
		if dt := l.Weight.Value.DType(); dt != tensor.NF4 {
			t.Fatalf("%s held as %v, want NF4", l.Name, dt)
		}
	}
	ref, err := nn.Load(phi3Tiny(t), nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qp := q.Params()
	for name, p := range ref.Params() {
		if qp[name].Value.DType() == tensor.NF4 {
			p.Value.CopyFrom(qp[name].Value.To(tensor.F32))
		}
	}
	ids := []int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700, 5, 1200, 33, 2048, 11, 999, 4000, 3071,
		7, 7, 300, 301, 302, 3071, 11, 2, 999, 4000, 1, 5, 5, 5, 1200, 33, 2048} // past 32: the long factors
	logits := func(m *nn.Model) []float64 {
		out, err := m.Forward(nil, nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64()
	}
	report(t, "phi3 NF4 vs dequantized float32", testutil.RelFrobenius(logits(q), logits(ref)), 1e-6)

	a, err := lora.New(q, lora.NewConfig(4, 8, "all-linear"), "default", 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Layers {
		tensor.F32Data(l.B.Value)[0] = 0.1 // a non-zero update
	}
	var leaves []string
	for _, mod := range a.Modules() {
		if leaf := mod[strings.LastIndexByte(mod, '.')+1:]; !slices.Contains(leaves, leaf) {
			leaves = append(leaves, leaf)
		}
	}
	slices.Sort(leaves)
	if want := []string{"down_proj", "gate_up_proj", "o_proj", "qkv_proj"}; !slices.Equal(leaves, want) {
		t.Fatalf("all-linear adapts %v, want %v", leaves, want)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight", "base_model.model.model.layers.0.mlp.gate_up_proj.lora_A.weight"} {
		if !f.Has(name) {
			t.Errorf("adapter_model.safetensors has no %s (names: %v)", name, f.Names()[:4])
		}
	}
	f.Close()
	if err := a.Attach(q); err != nil {
		t.Fatal(err)
	}
	adapted := logits(q)
	merged := filepath.Join(t.TempDir(), "merged")
	if err := export.MergedHF(q, a, phi3Tiny(t), merged, 0); err != nil {
		t.Fatal(err)
	}
	set, err := safetensors.OpenDir(merged)
	if err != nil {
		t.Fatal(err)
	}
	names := set.Names()
	set.Close()
	if !slices.Contains(names, "model.layers.0.self_attn.qkv_proj.weight") || !slices.Contains(names, "model.layers.0.mlp.gate_up_proj.weight") ||
		slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, ".q_proj.") || strings.Contains(n, ".gate_proj.") }) {
		t.Fatalf("merged folder's tensors are not in the fused layout: %v", names)
	}
	mm, err := nn.Load(merged, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	report(t, "phi3 merged (NF4 base) vs NF4 + adapter", testutil.RelFrobenius(logits(mm), adapted), 1e-5)
}

// TestPhi3LlamaStyleTargets: a Llama-style target list on Phi-3 is an
// error that names the fused module to target instead.
func TestPhi3LlamaStyleTargets(t *testing.T) {
	m, err := nn.Load(phi3Tiny(t), nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lora.New(m, lora.NewConfig(4, 8, "o_proj", "v_proj"), "default", 1)
	if err == nil || !strings.Contains(err.Error(), `"v_proj" matches no linear layer`) || !strings.Contains(err.Error(), "fuses it into qkv_proj") {
		t.Fatalf("targets [o_proj, v_proj] on phi3: %v", err)
	}
	if _, err := lora.New(m, lora.NewConfig(4, 8, "qkv_proj", "gate_up_proj"), "default", 1); err != nil {
		t.Fatal(err)
	}
}
