package config

import (
	"strings"
	"testing"
)

// TestOtherTrainersConfig: a config of another trainer's flat keys (an
// Axolotl file, abridged) is told so first, then each key with its ftune
// name, and the keys whose nearest spelling would mislead are explained:
// load_in_8bit was offered model.load_in_4bit, adapter training.adapters.
func TestOtherTrainersConfig(t *testing.T) {
	file := "base_model: NousResearch/Llama-3.2-1B\nload_in_8bit: false\nadapter: lora\ncutoff_len: 1024\nlora_target_linear: true\nbf16: auto\nwandb_project:\n"
	_, err := Parse([]byte(file), "axolotl.yaml")
	if err == nil {
		t.Fatal("parsed")
	}
	list, _ := err.(ErrorList)
	want := []string{
		"axolotl.yaml: not an ftune run file: its 7 keys sit at the top level, as in the flat configs of Axolotl, LLaMA-Factory or transformers; ftune's are under model:, data: and training:",
		"axolotl.yaml:1: unknown key `base_model` at the top level; did you mean `model.path`?",
		"axolotl.yaml:2: unknown key `load_in_8bit` at the top level; 8-bit base weights are not offered: model.load_in_4bit quantizes them to 4-bit NF4",
		"axolotl.yaml:3: unknown key `adapter` at the top level; Axolotl's adapter: LoRA is always trained (training.lora); qlora is model.load_in_4bit: true",
		"axolotl.yaml:4: unknown key `cutoff_len` at the top level; did you mean `data.max_length`?",
		"axolotl.yaml:5: unknown key `lora_target_linear` at the top level; training.lora.targets: [all-linear]",
		"axolotl.yaml:6: unknown key `bf16` at the top level; training.precision: bf16",
		"axolotl.yaml:7: unknown key `wandb_project` at the top level",
	}
	if len(list) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("error %d:\n%s\nwant it to begin\n%s", i, list[i], w)
		}
	}
	// A run file with two slips is not told it is another trainer's.
	_, err = Parse([]byte("model:\n  pth: x\nlerning_rate: 1\nwarmup_steps: 3\n"), "run.yaml")
	if err == nil || strings.Contains(err.Error(), "not an ftune run file") || !strings.Contains(err.Error(), "run.yaml:3: unknown key `lerning_rate` at the top level") {
		t.Fatalf("got %v", err)
	}
}

// TestOtherTrainersValues: a value other trainers spell otherwise is
// proposed by its meaning, not its spelling (cosine_with_warmup is one
// edit from constant_with_warmup, and means cosine).
func TestOtherTrainersValues(t *testing.T) {
	cfg := Default()
	if err := Apply(cfg, []string{"training.schedule.name=cosine_with_warmup"}); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate()
	if err == nil || !strings.HasSuffix(err.Error(), "did you mean `cosine`?") {
		t.Fatalf("got %v", err)
	}
}
