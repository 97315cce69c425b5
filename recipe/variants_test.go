package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/nn"
)

// TestLoRAVariantsReachTheAdapterFile: rslora, dora and modules_to_save set
// in the options train (the magnitude and the copy are parameters) and end
// up in the exported PEFT folder: adapter_config.json's use_rslora,
// use_dora and modules_to_save, and the tensors under PEFT's keys.
func TestLoRAVariantsReachTheAdapterFile(t *testing.T) {
	o := quickOptions(t, "variants")
	o.RSLoRA, o.DoRA, o.ModulesToSave = true, true, []string{"down_proj"}
	o.Targets = []string{"q_proj", "v_proj"}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DoRA (rsLoRA scaling) r=16", "(modules_to_save): model.layers.0.mlp.down_proj, model.layers.1.mlp.down_proj"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log.String())
		}
	}
	dir := res.Adapters["default"]
	raw, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RSLoRA bool     `json:"use_rslora"`
		DoRA   bool     `json:"use_dora"`
		Save   []string `json:"modules_to_save"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.RSLoRA || !cfg.DoRA || !slices.Equal(cfg.Save, []string{"down_proj"}) {
		t.Errorf("adapter_config.json: use_rslora %v, use_dora %v, modules_to_save %v", cfg.RSLoRA, cfg.DoRA, cfg.Save)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := " " + strings.Join(f.Names(), " ") + " "
	for _, k := range []string{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
		"base_model.model.model.layers.0.mlp.down_proj.weight",
	} {
		if !strings.Contains(names, " "+k+" ") {
			t.Errorf("the adapter file lacks %s", k)
		}
	}
}

// TestTrainEmbeddingsOfATiedModel: tiny-base ties lm_head to the
// embeddings; modules_to_save trains separate copies of both (PEFT's
// default), saved under PEFT's keys.
func TestTrainEmbeddingsOfATiedModel(t *testing.T) {
	o := quickOptions(t, "tied")
	o.ModulesToSave = []string{"embed_tokens", "lm_head"}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(res.Adapters["default"], "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, k := range []string{"base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight"} {
		if !f.Has(k) {
			t.Errorf("the adapter file lacks %s", k)
		}
	}
}

// TestLoRAVariantRefusalsReachTheUser: copies that ftune does not
// implement stop the run before training, with the reason.
func TestLoRAVariantRefusalsReachTheUser(t *testing.T) {
	o := MultiTask(quickOptions(t, "ps"), []string{"chemistry", "geography"}, true)
	o.ModulesToSave = []string{"down_proj"}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "per-subject") {
		t.Errorf("modules_to_save with per-subject adapters: %v", err)
	}
}

// TestMemoryPlanCountsLoRAVariants: the estimate grows by the trained
// copies of modules_to_save (weights, gradient and two AdamW moments in
// float32) and by DoRA's magnitudes, so a run that adds them is not
// under-estimated.
func TestMemoryPlanCountsLoRAVariants(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := tinyOptions(t)
	o.BatchSize = 64 // more tokens than one 1024-row chunk of the loss
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevice("cpu", "auto")
	if err != nil {
		t.Fatal(err)
	}
	base := o.memoryPlan(cfg, d)
	o.ModulesToSave = []string{"embed_tokens", "lm_head"}
	saved := o.memoryPlan(cfg, d)
	want := 2 * float64(cfg.VocabSize*cfg.HiddenSize) * 4 * 4
	if got := saved.Adapters - base.Adapters; got != want {
		t.Errorf("copies add %.0f bytes to the adapters, want %.0f", got, want)
	}
	if !(saved.Logits > base.Logits) {
		t.Errorf("a copied lm_head computes every logit at once: logits %.0f, not above %.0f", saved.Logits, base.Logits)
	}
	o.ModulesToSave = nil
	o.DoRA = true
	if dora := o.memoryPlan(cfg, d); !(dora.Adapters > base.Adapters) {
		t.Errorf("DoRA's magnitudes not counted: %.0f vs %.0f", dora.Adapters, base.Adapters)
	}
}

// TestLoRAKindInTheLog: the training line names the variant in effect.
func TestLoRAKindInTheLog(t *testing.T) {
	o := Options{}
	if k := o.loraKind(); k != "LoRA" {
		t.Errorf("plain: %q", k)
	}
	o.DoRA, o.RSLoRA = true, true
	if k := o.loraKind(); k != "DoRA (rsLoRA scaling)" {
		t.Errorf("DoRA with rsLoRA: %q", k)
	}
}
