//go:build !devicecarry

// The device build of this package (scripts/gpu-bench.sh build: -tags
// devicecarry) leaves this file out: its end-to-end runs are CPU work, and
// through ftune.Train they link the embedded tiny-base model, 7.8 MB of the
// 64 MiB the device tool carries.

package parity

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/internal/tinymodels"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// familyCase is one of the tiny random models of the families checked
// against llama.cpp: its tinymodels family (folder testdata/<family>-tiny),
// the GGUF architecture it exports as, the check that its merged export
// loads back as that family, and prompt ids (longer than the sliding
// window where the family has one).
type familyCase struct {
	name, family, arch string
	loadsAs            func(nn.Config) bool
	ids                []int64
}

var familyCases = []familyCase{
	{"qwen3", "qwen3", "qwen3",
		func(c nn.Config) bool { return c.ModelType == "qwen3" && c.QKNorm && c.HeadDim == 32 },
		[]int64{1, 412, 87, 1033, 2, 9, 3000, 17}},
	{"gemma3", "gemma3", "gemma3",
		func(c nn.Config) bool {
			return c.ModelType == "gemma3_text" && c.QKNorm && c.NormPlusOne && c.SandwichNorms && c.HeadDim == 32 && c.SlidingWindow == 8
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}},
	// Phi-3: fused qkv_proj and gate_up_proj stay fused in the adapter (PEFT's
	// module names), the merged folder and the GGUF; the ids pass the
	// pretraining length 32, so the long LongRoPE factors are in play.
	{"phi3", "phi3", "phi3",
		func(c nn.Config) bool {
			return c.ModelType == "phi3" && c.FusedProjections && c.Rope.Type == "longrope" && c.Rope.OriginalMaxPositions == 32
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700, 5, 1200, 33, 2048, 11, 999, 4000, 3071,
			7, 7, 300, 301, 302, 3071, 11, 2, 999, 4000, 1, 5, 5, 5, 1200, 33, 2048}},
	{"phi4-mini", "phi4mini", "phi3",
		func(c nn.Config) bool {
			return c.ModelType == "phi3" && c.FusedProjections && c.RotaryDim() == 12 && c.TieEmbeddings
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}},
	{"gemma2", "gemma2", "gemma2",
		func(c nn.Config) bool {
			return c.ModelType == "gemma2" && !c.QKNorm && c.NormPlusOne && c.SandwichNorms && c.AttnSoftcap == 3 && c.FinalSoftcap == 6 &&
				c.QueryPreAttnScalar == 8 && c.SlidingWindow == 8 && c.SlidingLayers[0] && !c.SlidingLayers[1]
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}},
	// SmolLM3: Llama's tensors; layers 3 and 7 are NoPE layers, which the
	// merged folder must keep (no_rope_layers) and llama.cpp's smollm3
	// computes at the same places.
	{"smollm3", "smollm3", "smollm3",
		func(c nn.Config) bool {
			return c.ModelType == "smollm3" && c.TieEmbeddings && slices.Equal(c.NoRopeLayers, []bool{false, false, false, true, false, false, false, true})
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}},
	// Granite: Llama's tensors with every bias; the merged folder must keep
	// its four scalars (the merged weights alone would compute Llama).
	{"granite", "granite", "granite",
		func(c nn.Config) bool {
			return c.ModelType == "granite" && c.TieEmbeddings && c.AttentionBias && c.MLPBias &&
				c.EmbedMultiplier == 4 && c.AttnScale == 0.0625 && c.ResidualScale == 0.5 && c.LogitsDivisor == 2
		},
		[]int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}},
}

// TestFamilyTrainAndExports runs `ftune train --model testdata/<family>-tiny`
// for a few steps through the library entry point the CLI uses, for each
// family checked against llama.cpp: the loss falls, the adapter targets
// every projection of each layer (seven, or Phi-3's four with the fused
// qkv_proj and gate_up_proj; never the norms), its PEFT files round-trip through
// lora.Load and Save byte for byte, the merged Hugging Face folder loads
// back as the same family with logits equal to the base with the adapter
// attached, and the merged GGUF and the GGUF adapter are written for
// llama.cpp's architecture of that family.
func TestFamilyTrainAndExports(t *testing.T) {
	for _, fc := range familyCases {
		t.Run(fc.name, func(t *testing.T) { trainAndExport(t, fc) })
	}
}

func trainAndExport(t *testing.T, fc familyCase) {
	model := tinymodels.Dir(t, fc.family)
	cfg := ftune.DefaultConfig()
	cfg.Model.Path = model
	cfg.Training.MaxSteps = 8
	cfg.Training.BatchSize = 4
	cfg.Data.MaxLength = 96
	cfg.Training.Eval.Generation.Questions = 0
	cfg.Training.Tracking.OutputDir = t.TempDir()
	res, err := ftune.Train(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Losses) < 4 {
		t.Fatalf("%d losses logged, want one per step", len(res.Losses))
	}
	n := len(res.Losses)
	first, last := (res.Losses[0]+res.Losses[1])/2, (res.Losses[n-2]+res.Losses[n-1])/2
	t.Logf("losses %v", res.Losses)
	if !(last < first-0.5) {
		t.Fatalf("loss did not fall: first two steps %.3f, last two %.3f", first, last)
	}

	m, err := nn.Load(model, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := res.Adapters["default"]
	a, err := lora.Load(m, dir, "default")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range m.Layers {
		for _, l := range b.Linears() {
			want = append(want, l.Name)
		}
	}
	got := a.Modules()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("adapter modules %v, want the projections of each layer %v", got, want)
	}
	again := t.TempDir()
	if err := a.Save(again); err != nil {
		t.Fatal(err)
	}
	x, err1 := os.ReadFile(filepath.Join(dir, "adapter_model.safetensors"))
	y, err2 := os.ReadFile(filepath.Join(again, "adapter_model.safetensors"))
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Fatalf("adapter_model.safetensors differs after lora.Load and Save (%v, %v)", err1, err2)
	}

	merged := filepath.Join(t.TempDir(), "merged")
	if err := export.MergedHF(m, a, model, merged, 0); err != nil {
		t.Fatal(err)
	}
	mm, err := nn.Load(merged, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !fc.loadsAs(mm.Config) {
		t.Fatalf("merged folder loads as %+v", mm.Config)
	}
	ids := fc.ids
	logitsOf := func(m *nn.Model) []float64 {
		out, err := m.Forward(nil, nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64()
	}
	base := logitsOf(m)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	adapted := logitsOf(m)
	lora.Detach(m)
	if moved := testutil.RelFrobenius(adapted, base); moved < 1e-4 {
		t.Fatalf("the trained adapter moves the logits by %.3g only", moved)
	}
	report(t, fc.name+" merged vs base+adapter", testutil.RelFrobenius(logitsOf(mm), adapted), 1e-5)

	tok, err := tokenizer.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := gguf.WriteModelWith(context.Background(), filepath.Join(out, "merged.gguf"), m, tok, gguf.Options{FileType: gguf.FileF16, Adapter: a}); err != nil {
		t.Fatal(err)
	}
	if err := gguf.WriteLoRA(filepath.Join(out, "adapter.gguf"), m, a, gguf.FileF32); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"merged.gguf", "adapter.gguf"} {
		g, err := gguf.Read(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		arch, _ := g.String("general.architecture")
		g.Close()
		if arch != fc.arch {
			t.Fatalf("%s: architecture %q, want %s", f, arch, fc.arch)
		}
	}
}
