package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// convertAndLoad converts src and reads the written run file back with
// the loader `ftune train -c` uses, then validates it: what the user gets
// is the file, not the Conversion.
func convertAndLoad(t *testing.T, src, name string) (*Conversion, *RunConfig, string) {
	t.Helper()
	conv, err := Convert([]byte(src), name)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	var buf bytes.Buffer
	if err := conv.Write(&buf); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(buf.Bytes(), "run.yaml")
	if err != nil {
		t.Fatalf("the written file does not load: %v\n%s", err, buf.String())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the written file does not validate: %v", err)
	}
	return conv, cfg, buf.String()
}

// notesOf joins a conversion's notes, one a line.
func notesOf(c *Conversion) string {
	var lines []string
	for _, n := range c.Notes {
		lines = append(lines, n.String())
	}
	return strings.Join(lines, "\n")
}

// TestConvertAxolotl: an Axolotl QLoRA config (its examples' layout,
// abridged) converts key by key as Axolotl reads it; the run file loads
// to those values, the user's warmup_steps counts as chosen (a short run
// does not scale it) while the keys it did not set stay defaults, and
// what ftune does not do is listed with the reason.
func TestConvertAxolotl(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "train.jsonl")
	if err := os.WriteFile(data, []byte(`{"instruction":"a","input":"","output":"b"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `base_model: ` + dir + `
load_in_8bit: false
load_in_4bit: true
adapter: qlora
datasets:
  - path: ` + data + `
    type: alpaca
    field_instruction: question
val_set_size: 0.05
output_dir: ./outputs/qlora-out
sequence_len: 2048
sample_packing: false
lora_r: 32
lora_alpha: 16
lora_dropout: 0.1
lora_target_linear: true
wandb_project:
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 4
optimizer: paged_adamw_8bit
lr_scheduler: cosine
cosine_min_lr_ratio: 0.1
learning_rate: 0.0002
train_on_inputs: false
bf16: true
fp16: false
gradient_checkpointing: true
flash_attention: true
warmup_steps: 10
weight_decay: 0.01
seed: 7
deepspeed: deepspeed_configs/zero2.json
`
	conv, cfg, text := convertAndLoad(t, src, "axolotl.yaml")
	if conv.Trainer != "Axolotl" {
		t.Errorf("trainer %q", conv.Trainer)
	}
	want := Default()
	want.Model.Path, want.Model.LoadIn4Bit = dir, true
	want.Data.Files, want.Data.Shape, want.Data.Template = []string{data}, "alpaca", "alpaca"
	want.Data.Columns = map[string]string{"instruction": "question"}
	want.Data.ValSplit, want.Data.MaxLength, want.Data.Packing, want.Data.Seed = 0.05, 2048, false, 7
	want.Training.Tracking.OutputDir = "./outputs/qlora-out"
	want.Training.LoRA.R, want.Training.LoRA.Alpha, want.Training.LoRA.Dropout = 32, 16, 0.1
	want.Training.LoRA.Targets = []string{"all-linear"}
	want.Training.GradAccum, want.Training.BatchSize = 4, 2
	want.Training.MaxSteps, want.Training.MaxEpochs = 0, 4
	want.Training.Optimizer.Name, want.Training.Optimizer.LR, want.Training.Optimizer.WeightDecay = "adamw", 2e-4, 0.01
	want.Training.Schedule.Name, want.Training.Schedule.MinLRRate, want.Training.Schedule.WarmupSteps = "cosine_with_min_lr", 0.1, 10
	want.Training.Precision = "bf16"
	want.Training.GradientCheckpointing = true
	want.Training.Seed = 7
	if !reflect.DeepEqual(cfg.Model, want.Model) || !reflect.DeepEqual(cfg.Data, want.Data) || !reflect.DeepEqual(cfg.Training, want.Training) {
		t.Errorf("loaded\n%+v\n%+v\n%+v\nwant\n%+v\n%+v\n%+v", cfg.Model, cfg.Data, cfg.Training, want.Model, want.Data, want.Training)
	}
	// Axolotl's 10 warmup steps are the user's: a 20-step run keeps them.
	cfg.Training.MaxSteps = 20
	if steps, note := cfg.Warmup(); steps != 10 || note != "" {
		t.Errorf("warmup %d (%q): the converted warmup_steps 10 is the user's, not the default", steps, note)
	}
	for _, p := range []string{"training.schedule.warmup_steps", "training.optimizer.lr", "data.files"} {
		if !cfg.Chose(p) {
			t.Errorf("%s: converted, and not counted as chosen", p)
		}
	}
	for _, p := range []string{"training.clip_norm", "training.log_every", "data.text_unit"} {
		if cfg.Chose(p) || cfg.Where(p) == "default" {
			t.Errorf("%s: not in the source, and Chose %v (from %s): want ftune's printed default", p, cfg.Chose(p), cfg.Where(p))
		}
	}
	notes := notesOf(conv)
	for _, w := range []string{
		"axolotl.yaml:17: wandb_project: not converted: set to nothing (null)",
		"axolotl.yaml:21: optimizer: paged_adamw_8bit keeps AdamW's moments in 8 bits",
		"axolotl.yaml:29: flash_attention: not converted: training.attention_kernel: flash",
		"axolotl.yaml:33: deepspeed: not converted: multi-GPU sharding is not offered",
	} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
		if !strings.Contains(text, w) {
			t.Errorf("the written file lacks %q", w)
		}
	}
	if strings.Contains(notes, "base_model") {
		t.Errorf("a local model folder has a note:\n%s", notes)
	}
	if !strings.Contains(text, "  lr: 0.0002 # from axolotl.yaml:24 learning_rate\n") {
		t.Errorf("learning_rate's line is not marked:\n%s", text)
	}
}

// TestConvertLLaMAFactory: a LLaMA-Factory LoRA config converts with its
// datasets read from dataset_info.json (a ShareGPT file tagged with
// OpenAI's roles is ftune's chat shape), a Hub model kept as model.path
// with a note that says how to download it, its own template said and
// left to the model's, transformers' warmup_ratio kept as a ratio (both
// round it up).
func TestConvertLLaMAFactory(t *testing.T) {
	dir := t.TempDir()
	info := `{"my_chat": {"file_name": "chat.json", "formatting": "sharegpt",
  "columns": {"messages": "messages"},
  "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
 "qa": {"file_name": "qa.json", "columns": {"prompt": "question", "response": "answer"}}}`
	for name, text := range map[string]string{"dataset_info.json": info, "chat.json": "[]", "qa.json": "[]"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `### model
model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct
quantization_bit: 4
### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_target: all
### dataset
dataset: my_chat
dataset_dir: ` + dir + `
template: qwen
cutoff_len: 1024
### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
val_size: 0.1
optim: adamw_torch
output_dir: saves/qwen/lora/sft
`
	conv, cfg, _ := convertAndLoad(t, src, "qwen_lora_sft.yaml")
	if conv.Trainer != "LLaMA-Factory" {
		t.Errorf("trainer %q", conv.Trainer)
	}
	want := Default()
	want.Model.Path, want.Model.LoadIn4Bit = "Qwen/Qwen2.5-0.5B-Instruct", true
	want.Data.Files, want.Data.Shape = []string{filepath.Join(dir, "chat.json")}, "chat"
	want.Data.MaxLength, want.Data.ValSplit = 1024, 0.1
	want.Data.Packing = false // LLaMA-Factory's default packing
	want.Training.LoRA.R, want.Training.LoRA.Alpha, want.Training.LoRA.Targets = 8, 16, []string{"all-linear"}
	want.Training.LoRA.Dropout = 0 // LLaMA-Factory's default lora_dropout
	want.Training.BatchSize, want.Training.GradAccum = 1, 8
	want.Training.Optimizer.LR = 1e-4
	want.Training.MaxSteps, want.Training.MaxEpochs = 0, 3
	want.Training.Schedule.WarmupRatio = 0.1
	want.Training.Precision = "bf16"
	want.Training.Tracking.OutputDir = "saves/qwen/lora/sft"
	if !reflect.DeepEqual(cfg.Model, want.Model) || !reflect.DeepEqual(cfg.Data, want.Data) || !reflect.DeepEqual(cfg.Training, want.Training) {
		t.Errorf("loaded\n%+v\n%+v\n%+v\nwant\n%+v\n%+v\n%+v", cfg.Model, cfg.Data, cfg.Training, want.Model, want.Data, want.Training)
	}
	notes := notesOf(conv)
	for _, w := range []string{
		"qwen_lora_sft.yaml:2: model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct is not a folder here, and ftune does not download models: model.path names it until you do (hf download Qwen/Qwen2.5-0.5B-Instruct --local-dir Qwen/Qwen2.5-0.5B-Instruct)",
		"qwen_lora_sft.yaml:6: do_train: not converted: ftune has no such setting",
		`qwen_lora_sft.yaml:14: template: not converted: "qwen" is LLaMA-Factory's own template`,
	} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}

	// An alpaca file whose columns are named otherwise.
	_, cfg, _ = convertAndLoad(t, strings.Replace(src, "dataset: my_chat", "dataset: qa", 1), "f.yaml")
	if cfg.Data.Shape != "alpaca" || !reflect.DeepEqual(cfg.Data.Columns, map[string]string{"instruction": "question", "output": "answer"}) {
		t.Errorf("qa: shape %s, columns %v", cfg.Data.Shape, cfg.Data.Columns)
	}
	// Two layouts in one run are refused: ftune reads every file alike.
	_, err := Convert([]byte(strings.Replace(src, "dataset: my_chat", "dataset: my_chat,qa", 1)), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), "f.yaml:12: dataset: "+filepath.Join(dir, "chat.json")+" is read as shape chat, and "+filepath.Join(dir, "qa.json")+" as shape alpaca with columns {instruction: question, output: answer}") {
		t.Errorf("two layouts: %v", err)
	}
}

// TestConvertValues: values whose meaning or unit differs between the
// trainers and ftune.
func TestConvertValues(t *testing.T) {
	for _, c := range []struct {
		src   string
		check func(*RunConfig) bool
	}{
		// Axolotl's batch_size is the step's rows: micro_batch_size each,
		// the rest accumulated.
		{"base_model: x/y\nmicro_batch_size: 2\nbatch_size: 16\n", func(c *RunConfig) bool {
			return c.Training.BatchSize == 2 && c.Training.GradAccum == 8
		}},
		// Axolotl's warmup_ratio rounds down (ftune's up): with max_steps
		// known it is converted to steps, 1 made 2 as Axolotl does.
		{"base_model: x/y\nmax_steps: 25\nwarmup_ratio: 0.1\n", func(c *RunConfig) bool {
			return c.Training.Schedule.WarmupSteps == 2 && c.Training.Schedule.WarmupRatio == 0 && c.Training.MaxSteps == 25
		}},
		{"base_model: x/y\nmax_steps: 15\nwarmup_ratio: 0.1\n", func(c *RunConfig) bool { return c.Training.Schedule.WarmupSteps == 2 }},
		{"base_model: x/y\nmax_steps: 100\nwarmup_ratio: 0.05\n", func(c *RunConfig) bool { return c.Training.Schedule.WarmupSteps == 5 }},
		// A ratio of 0 is no warmup (transformers' warmup_steps is 0 by
		// default, ftune's 10).
		{"model_name_or_path: x/y\nwarmup_ratio: 0.0\n", func(c *RunConfig) bool {
			w, _ := c.Warmup()
			return w == 0 && c.Chose("training.schedule.warmup_steps")
		}},
		// transformers' max_steps wins over epochs; -1 is unset.
		{"model_name_or_path: x/y\nnum_train_epochs: 2\nmax_steps: 50\n", func(c *RunConfig) bool {
			return c.Training.MaxSteps == 50 && c.Training.MaxEpochs == 3 // epochs ignored: the default stays
		}},
		{"model_name_or_path: x/y\nnum_train_epochs: 2\nmax_steps: -1\n", func(c *RunConfig) bool {
			return c.Training.MaxSteps == 0 && c.Training.MaxEpochs == 2
		}},
		{"model_name_or_path: x/y\nlora_target: q_proj,v_proj\nadam_beta2: 0.95\nseed: 3\ndata_seed: 4\n", func(c *RunConfig) bool {
			return reflect.DeepEqual(c.Training.LoRA.Targets, []string{"q_proj", "v_proj"}) &&
				reflect.DeepEqual(c.Training.Optimizer.Betas, []float64{0.9, 0.95}) && c.Training.Seed == 3 && c.Data.Seed == 4
		}},
		{"model_name_or_path: x/y\nlr_scheduler_type: cosine_with_min_lr\nlearning_rate: 2e-4\nlr_scheduler_kwargs: {min_lr: 2e-5}\n", func(c *RunConfig) bool {
			return c.Training.Schedule.Name == "cosine_with_min_lr" && c.Training.Schedule.MinLRRate > 0.0999 && c.Training.Schedule.MinLRRate < 0.1001
		}},
		{"base_model: x/y\ncosine_min_lr_ratio: 0.2\n", func(c *RunConfig) bool {
			return c.Training.Schedule.Name == "cosine_with_min_lr" && c.Training.Schedule.MinLRRate == 0.2
		}},
		{"base_model: x/y\nrl: orpo\nmetric_for_best_model: eval_loss\nearly_stopping_patience: 2\n", func(c *RunConfig) bool {
			return c.Training.Objective == "dpo" && reflect.DeepEqual(c.Training.DPO.LossType, []string{"orpo"}) &&
				c.Training.EarlyStopping.Enabled && c.Training.EarlyStopping.Patience == 2
		}},
		// No validation data: nothing can rank checkpoints.
		{"base_model: x/y\nval_set_size: 0\n", func(c *RunConfig) bool {
			return c.Data.ValSplit == 0 && c.Training.Checkpointing.Monitor == "" && c.Training.Checkpointing.TopK == 0
		}},
		{"model_name_or_path: x/y\ncompletion_only_loss: false\nbf16: false\nfp16: false\n", func(c *RunConfig) bool {
			return c.Data.TrainOnInputs && c.Training.Precision == "f32"
		}},
	} {
		_, cfg, _ := convertAndLoad(t, c.src, "c.yaml")
		if !c.check(cfg) {
			t.Errorf("%q: converted to %+v\n%+v", c.src, cfg.Data, cfg.Training)
		}
	}
}

// TestConvertRefuses: a value that cannot be converted is an error naming
// the file, the line and the key, and saying what ftune takes; nothing
// is converted then.
func TestConvertRefuses(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"base_model: x/y\nnum_epochs: 1.5\n", "c.yaml:2: num_epochs: 1.5: ftune trains whole epochs"},
		{"base_model: x/y\noptimizer: lion_8bit\n", `c.yaml:2: optimizer: "lion_8bit" is not offered: ftune's optimizers are AdamW`},
		{"base_model: x/y\nval_set_size: 200\n", "c.yaml:2: val_set_size: 200: ftune holds out a fraction"},
		{"base_model: x/y\nlr_scheduler: one_cycle\n", `c.yaml:2: lr_scheduler: "one_cycle" is not offered: training.schedule.name takes constant,`},
		{"base_model: x/y\nlearning_rate: fast\n", `c.yaml:2: learning_rate (ftune's training.optimizer.lr): want a number, got "fast"`},
		{"base_model: x/y\nload_in_8bit: true\n", "c.yaml:2: load_in_8bit: true is not offered: 8-bit base weights are not offered"},
		{"base_model: x/y\nadapter: ia3\n", `c.yaml:2: adapter: "ia3" is not offered`},
		{"base_model: x/y\nmicro_batch_size: 4\nbatch_size: 10\n", "c.yaml:3: batch_size: 10 is not a multiple of micro_batch_size 4"},
		{"base_model: x/y\ndatasets:\n  - path: a.jsonl\n    type: input_output\n", `c.yaml:2: datasets: entry 1 (line 3): type "input_output" cannot be converted`},
		{"base_model: x/y\ndatasets:\n  - path: a.jsonl\n    type:\n      field_instruction: q\n", "c.yaml:2: datasets: entry 1 (line 3): a type written as fields"},
		{"model_name_or_path: x/y\nstage: ppo\n", `c.yaml:2: stage: "ppo" is not offered`},
		{"model_name_or_path: x/y\ndataset: a\ndataset_dir: /nonexistent\n", "c.yaml:2: dataset: LLaMA-Factory names its datasets in /nonexistent/dataset_info.json, which cannot be read"},
		{"model_name_or_path: x/y\nlora_rank: 0\n", "c.yaml:2: training.lora.r: must be > 0, got 0"}, // ftune's validation, at the source's line
		{"model:\n  path: x\ntraining:\n  seed: 1\n", "c.yaml:1: `model` is a section of an ftune run file: this is one already"},
		{"- a\n- b\n", "c.yaml:1: want a config of key: value lines"},
		{"a: 1\na: 2\n", "c.yaml:2: a: set twice (first at line 1)"},
		{"model_name_or_path: x/y\nlr_scheduler_type: cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr: 1e-5}\n", "c.yaml:3: lr_scheduler_kwargs: min_lr is a rate"},
	} {
		conv, err := Convert([]byte(c.src), "c.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v (conversion %v), want an error saying %q", c.src, err, conv, c.want)
		}
	}
}

// TestConvertLLaMAFactoryLoRADefaults: the LoRA settings a LLaMA-Factory
// file leaves out are LLaMA-Factory's defaults (lora_rank 8, lora_alpha
// twice the rank, lora_dropout 0, lora_target all), not ftune's, each
// said and counted as chosen; a file that sets them keeps its values.
func TestConvertLLaMAFactoryLoRADefaults(t *testing.T) {
	conv, cfg, text := convertAndLoad(t, "model_name_or_path: /no/such/model\nstage: sft\nfinetuning_type: lora\nlearning_rate: 1.0e-4\nmax_steps: 20\n", "lf.yaml")
	// A path that is not a Hub id is not offered a download.
	if notes := notesOf(conv); !strings.Contains(notes, "lf.yaml:1: model_name_or_path: /no/such/model is not a folder here: set model.path to the model's folder") {
		t.Errorf("the missing model folder's note:\n%s", notes)
	}
	l := cfg.Training.LoRA
	if l.R != 8 || l.Alpha != 16 || l.Dropout != 0 || !reflect.DeepEqual(l.Targets, []string{"all-linear"}) {
		t.Errorf("LoRA r %d alpha %v dropout %v targets %v; want LLaMA-Factory's 8, 16, 0, [all-linear]\n%s", l.R, l.Alpha, l.Dropout, l.Targets, text)
	}
	for _, path := range []string{"training.lora.r", "training.lora.alpha", "training.lora.dropout", "training.lora.targets"} {
		if !cfg.Chose(path) {
			t.Errorf("%s does not count as chosen", path)
		}
	}
	if notes := notesOf(conv); !strings.Contains(notes, "lf.yaml: training.lora.alpha: not set there: LLaMA-Factory's default of lora_alpha, twice lora_rank, applies: 16") {
		t.Errorf("the notes do not say alpha's default:\n%s", notes)
	}
	_, cfg, text = convertAndLoad(t, "stage: sft\nlora_rank: 32\nlora_dropout: 0.1\nlora_target: q_proj,v_proj\n", "lf.yaml")
	l = cfg.Training.LoRA
	if l.R != 32 || l.Alpha != 64 || l.Dropout != 0.1 || !reflect.DeepEqual(l.Targets, []string{"q_proj", "v_proj"}) {
		t.Errorf("LoRA r %d alpha %v dropout %v targets %v; want 32, 64 (twice the rank), 0.1, [q_proj v_proj]\n%s", l.R, l.Alpha, l.Dropout, l.Targets, text)
	}
	// Axolotl's and transformers' files keep ftune's defaults (said).
	if _, cfg, _ = convertAndLoad(t, "base_model: x\nmicro_batch_size: 2\n", "ax.yaml"); cfg.Training.LoRA.Alpha != Default().Training.LoRA.Alpha {
		t.Errorf("Axolotl file: alpha %v", cfg.Training.LoRA.Alpha)
	}
}

// TestConvertEmbeddedModel: base_model tiny-base, the model ftune embeds,
// is no missing folder (the note said training refuses it; training
// takes it).
func TestConvertEmbeddedModel(t *testing.T) {
	conv, cfg, _ := convertAndLoad(t, "base_model: tiny-base\nlearning_rate: 0.0002\nmicro_batch_size: 2\n", "ax.yaml")
	if cfg.Model.Path != "tiny-base" {
		t.Errorf("model.path %q, want tiny-base", cfg.Model.Path)
	}
	if notes := notesOf(conv); strings.Contains(notes, "not a folder") {
		t.Errorf("the embedded model is said to be missing:\n%s", notes)
	}
}
