package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string   // parsed as run.yaml first ("" = defaults)
		sets []string // then applied
		want []string // each must appear in the error, in order; nil = valid
	}{
		{name: "defaults"},
		{name: "lr zero", sets: []string{"training.optimizer.lr=0"}, want: []string{"--set training.optimizer.lr=0: training.optimizer.lr: must be > 0, got 0"}},
		{name: "lr from file line", yaml: "training:\n  optimizer:\n    lr: -1\n", want: []string{"run.yaml:3: training.optimizer.lr: must be > 0, got -1"}},
		{name: "rank zero", yaml: "training:\n  lora:\n    r: 0\n", want: []string{"run.yaml:3: training.lora.r: must be > 0"}},
		{name: "dropout one", sets: []string{"training.lora.dropout=1"}, want: []string{"training.lora.dropout: must be in [0, 1)"}},
		{name: "no targets", sets: []string{"training.lora.targets=[]"}, want: []string{"training.lora.targets: must name at least one module"}},
		{name: "warmup exceeds steps (file sets steps)", yaml: "training:\n  max_steps: 5\n", sets: []string{"training.schedule.warmup_steps=12"},
			want: []string{"--set training.schedule.warmup_steps=12: training.schedule.warmup_steps: 12 warmup steps exceed training.max_steps (5)"}},
		{name: "warmup set, steps lowered by --set", yaml: "training:\n  schedule:\n    warmup_steps: 12\n", sets: []string{"training.max_steps=3"},
			want: []string{"run.yaml:3: training.schedule.warmup_steps: 12 warmup steps exceed training.max_steps (3)"}},
		// The default warmup is scaled to a short run (RunConfig.Warmup)
		// when it came from Default() or the file ftune init wrote; 10
		// from --set or a file written by hand is the user's 10.
		{name: "default warmup in the file ftune init wrote, short run", yaml: initTop + "training:\n  schedule:\n    warmup_steps: 10\n", sets: []string{"training.max_steps=3"}},
		{name: "warmup of 10 written by hand, short run", yaml: "training:\n  schedule:\n    warmup_steps: 10\n", sets: []string{"training.max_steps=3"},
			want: []string{"run.yaml:3: training.schedule.warmup_steps: 10 warmup steps exceed training.max_steps (3)"}},
		{name: "warmup of 10 by --set, short run", sets: []string{"training.max_steps=5", "training.schedule.warmup_steps=10"},
			want: []string{"--set training.schedule.warmup_steps=10: training.schedule.warmup_steps: 10 warmup steps exceed training.max_steps (5)"}},
		{name: "warmup equal to steps", sets: []string{"training.max_steps=10", "training.schedule.warmup_steps=10"}},
		{name: "warmup exceeds steps (both set)", yaml: "training:\n  max_steps: 5\n  schedule:\n    warmup_steps: 6\n",
			want: []string{"run.yaml:4: training.schedule.warmup_steps: 6 warmup steps exceed"}},
		{name: "top_k needs monitor", sets: []string{"training.checkpointing.monitor="},
			want: []string{"--set training.checkpointing.monitor=: training.checkpointing.monitor: top_k 1 needs training.checkpointing.monitor"}},
		{name: "monitor needs validation", sets: []string{"data.val_split=0"},
			want: []string{"--set data.val_split=0: data.val_split: val/loss is computed on validation data"}},
		{name: "monitor not a metric", sets: []string{"training.checkpointing.monitor=loss"},
			want: []string{`training.checkpointing.monitor: "loss" is not a validation metric`}},
		{name: "monitor misspelt", sets: []string{"training.checkpointing.monitor=val/los"},
			want: []string{`training.checkpointing.monitor: "val/los" is not a validation metric`}},
		{name: "monitor per subject", sets: []string{"training.checkpointing.monitor=val/chemistry/token_accuracy", "training.checkpointing.mode=max"}},
		{name: "monitor train metric not implemented", sets: []string{"training.early_stopping.enabled=true", "training.early_stopping.monitor=train/loss"},
			want: []string{`--set training.early_stopping.monitor=train/loss: training.early_stopping.monitor: "train/loss" is not implemented: checkpoints are ranked`}},
		{name: "dtype f32 not implemented", yaml: "model:\n  dtype: f32\n",
			want: []string{`run.yaml:2: model.dtype: "f32" is not implemented: the frozen weights are kept as the checkpoint stores them`}},
		{name: "dtype f16 not implemented", sets: []string{"model.dtype=f16"}, want: []string{`--set model.dtype=f16: model.dtype: "f16" is not implemented`}},
		{name: "dtype typo", sets: []string{"model.dtype=bf61"}, want: []string{`"bf61" is not one of auto, bf16`}},
		{name: "dtype bf16", sets: []string{"model.dtype=bf16"}},
		{name: "format with subject root", yaml: "data:\n  format: csv\n",
			want: []string{`run.yaml:2: data.format: "csv" applies to data.files only; a subject root is read by file extension`}},
		{name: "shape with subject root", sets: []string{"data.root=/d", "data.shape=alpaca"},
			want: []string{`--set data.shape=alpaca: data.shape: "alpaca" applies to data.files only`}},
		{name: "format and shape with files", sets: []string{"data.files=[a.csv]", "data.format=csv", "data.shape=alpaca"}},
		{name: "double quant off not implemented", sets: []string{"training.quantization.double_quant=false"},
			want: []string{"--set training.quantization.double_quant=false: training.quantization.double_quant: false is not implemented"}},
		{name: "early stopping needs patience", sets: []string{"training.early_stopping.enabled=true", "training.early_stopping.patience=0"},
			want: []string{"training.early_stopping.patience: must be > 0"}},
		{name: "bad mode with suggestion", sets: []string{"training.checkpointing.mode=mn"},
			want: []string{`training.checkpointing.mode: "mn" is not one of min, max; did you mean ` + "`min`?"}},
		{name: "unknown optimizer", sets: []string{"training.optimizer.name=adam"},
			want: []string{`"adam" is not one of adamw, sgd; did you mean ` + "`adamw`?"}},
		{name: "unknown schedule", sets: []string{"training.schedule.name=cosin"}, want: []string{"did you mean `cosine`?"}},
		{name: "template file allowed", sets: []string{"data.template=my/chat.jinja"}},
		{name: "unknown template", sets: []string{"data.template=chatm"}, want: []string{"did you mean `chatml`?"}},
		{name: "enable_thinking from a YAML boolean", yaml: "data:\n  enable_thinking: false\n"},
		{name: "enable_thinking with a template file", sets: []string{"data.enable_thinking=true", "data.template=my/qwen3.jinja"}},
		{name: "enable_thinking not a boolean", sets: []string{"data.enable_thinking=maybe"}, want: []string{`data.enable_thinking: "maybe" is not one of auto, true, false`}},
		{name: "enable_thinking with a built-in template", yaml: "data:\n  template: chatml\n  enable_thinking: true\n",
			want: []string{"run.yaml:3: data.enable_thinking: true is set, but the built-in template chatml does not read enable_thinking"}},
		{name: "root and files", sets: []string{"data.root=/d", "data.files=[a.jsonl]"}, want: []string{"--set data.files=[a.jsonl]: data.files: set data.root or data.files, not both"}},
		{name: "weights without mixing", yaml: "data:\n  weights: {a: 1}\n", want: []string{"run.yaml:2: data.weights: are only used with mixing: weights"}},
		{name: "weights for unlisted subject", yaml: "data:\n  subjects: [a]\n  mixing: weights\n  weights: {a: 1, b: 2}\n",
			want: []string{`run.yaml:4: data.weights.b: subject "b" is not in data.subjects`}},
		{name: "weights all zero", yaml: "data:\n  mixing: weights\n  weights: {a: 0}\n", want: []string{"data.weights: weights sum to 0"}},
		{name: "duplicate subject", sets: []string{"data.subjects=[a, a]"}, want: []string{`"a" is listed twice`}},
		{name: "betas length", sets: []string{"training.optimizer.betas=[0.9]"}, want: []string{"want two values [beta1, beta2], got 1"}},
		{name: "beta out of range", sets: []string{"training.optimizer.betas=[0.9, 1]"}, want: []string{"beta2 must be in [0, 1), got 1"}},
		{name: "nan lr", sets: []string{"training.optimizer.lr=.nan"}, want: []string{"training.optimizer.lr: must be > 0, got NaN"}},
		{name: "no stopping rule", sets: []string{"training.max_epochs=0", "training.max_steps=0"}, want: []string{"set max_steps or max_epochs"}},
		{name: "block size", sets: []string{"training.quantization.block_size=100"}, want: []string{"--set training.quantization.block_size=100: training.quantization.block_size: 100 is not implemented: training quantizes with block_size 64"}},
		{name: "block size 128 not wired", yaml: "training:\n  quantization:\n    block_size: 128\n", want: []string{"run.yaml:3: training.quantization.block_size: 128 is not implemented"}},
		{name: "device", sets: []string{"training.device=gpu"}, want: []string{`"gpu" is not auto, cpu, cuda or cuda:N`}},
		{name: "device index ok", sets: []string{"training.device=cuda:1"}},
		{name: "precision bf16 on cuda", sets: []string{"training.device=cuda", "training.precision=bf16"}},
		{name: "precision typo", sets: []string{"training.precision=fp32"}, want: []string{`training.precision: "fp32" is not one of auto, bf16, f32`}},
		// Valid config: whether this CPU has AVX512_BF16 is the device's
		// question (recipe.OpenDeviceFor), not the file's.
		{name: "precision bf16 on the cpu", sets: []string{"training.device=cpu", "training.precision=bf16"}},
		{name: "run name with slash", sets: []string{"training.tracking.run_name=../x"}, want: []string{"must be a plain folder name"}},
		// The default samples (2) shows at most the questions asked: one
		// question is no conflict; samples set above the questions is.
		{name: "one question, default samples", sets: []string{"training.eval.generation.questions=1"}},
		{name: "samples exceed questions", sets: []string{"training.eval.generation.questions=1", "training.eval.generation.samples=3"}, want: []string{"training.eval.generation.samples: 3 samples exceed the 1 questions asked"}},
		{name: "no questions, default samples", sets: []string{"training.eval.generation.questions=0"}},
		{name: "spike factor", sets: []string{"training.spike_factor=0.5"}, want: []string{"must be 0 (off) or > 1"}},
		{name: "short run on defaults", sets: []string{"training.max_steps=3"}},
		{name: "conflict blamed on the set side", sets: []string{"training.checkpointing.top_k=2", "training.checkpointing.monitor="},
			want: []string{"--set training.checkpointing.top_k=2: training.checkpointing.top_k: top_k 2 needs"}},
		// Settings the run would ignore: refused when changed from the
		// default, never when left at it (see TestInitFileShortRun).
		{name: "max_epochs with max_steps", sets: []string{"training.max_epochs=1"},
			want: []string{"--set training.max_epochs=1: training.max_epochs: 1 epochs are not used: training.max_steps (240) decides"}},
		{name: "max_epochs by epochs", sets: []string{"training.max_epochs=1", "training.max_steps=0"}},
		{name: "max_epochs 0 with max_steps", sets: []string{"training.max_epochs=0"}},
		{name: "momentum with adamw", yaml: "training:\n  optimizer:\n    momentum: 0.5\n",
			want: []string{"run.yaml:3: training.optimizer.momentum: 0.5 is SGD's momentum, and optimizer adamw does not use it"}},
		{name: "momentum with sgd", sets: []string{"training.optimizer.name=sgd", "training.optimizer.momentum=0.5"}},
		{name: "long_text truncate under dpo", sets: []string{"training.objective=dpo", "data.long_text=truncate"},
			want: []string{"--set data.long_text=truncate: data.long_text: truncate applies to supervised plain text; training.objective dpo reads preference records"}},
		{name: "text_unit not one of", sets: []string{"data.text_unit=page"}, want: []string{`data.text_unit: "page" is not one of auto, line, paragraph, file`}},
		{name: "betas with sgd", sets: []string{"training.optimizer.name=sgd", "training.optimizer.betas=[0.8, 0.9]"},
			want: []string{"training.optimizer.betas: are AdamW's, and optimizer sgd does not use them"}},
		{name: "eps with sgd", sets: []string{"training.optimizer.name=sgd", "training.optimizer.eps=1e-6"},
			want: []string{"training.optimizer.eps: is AdamW's"}},
		{name: "dpo beta with sft", sets: []string{"training.dpo.beta=0.5"},
			want: []string{"--set training.dpo.beta=0.5: training.dpo.beta: 0.5 is used by objective dpo only, and the objective is sft"}},
		{name: "dpo beta with dpo", sets: []string{"training.objective=dpo", "training.dpo.beta=0.5"}},
		{name: "kto settings with dpo", yaml: "training:\n  objective: dpo\n  kto:\n    beta: 0.5\n    undesirable_weight: 2\n",
			want: []string{"run.yaml:4: training.kto.beta: set, but only objective kto reads it, and the objective is dpo", "run.yaml:5: training.kto.undesirable_weight: set, but only objective kto reads it"}},
		{name: "kto settings with kto", sets: []string{"training.objective=kto", "training.kto.beta=0.5", "training.kto.desirable_weight=1.33", "training.kto.loss_type=apo_zero_unpaired"}},
		{name: "kto ranges", sets: []string{"training.objective=kto", "training.kto.beta=0", "training.kto.desirable_weight=-1", "training.kto.loss_type=bco"},
			want: []string{"training.kto.beta: must be > 0, got 0", "training.kto.desirable_weight: must be >= 0 and finite, got -1", `training.kto.loss_type: "bco" is not one of kto, apo_zero_unpaired`}},
		{name: "kto weights both 0", sets: []string{"training.objective=kto", "training.kto.desirable_weight=0", "training.kto.undesirable_weight=0"},
			want: []string{"--set training.kto.desirable_weight=0: training.kto.desirable_weight: and undesirable_weight are both 0"}},
		{name: "kto batch of one", sets: []string{"training.objective=kto", "training.batch_size=1"},
			want: []string{"--set training.batch_size=1: training.batch_size: 1 under objective kto: KTO's KL estimate pairs each prompt"}},
		{name: "apo_zero_unpaired batch of one", sets: []string{"training.objective=kto", "training.kto.loss_type=apo_zero_unpaired", "training.batch_size=1"}},
		{name: "kto monitor", sets: []string{"training.objective=kto", "training.checkpointing.monitor=val/perplexity"},
			want: []string{`training.checkpointing.monitor: "val/perplexity" is not measured under objective kto: its validation reports val/loss (the KTO loss)`}},
		{name: "early stopping settings without enabled", yaml: "training:\n  early_stopping:\n    monitor: val/perplexity\n    patience: 5\n    min_delta: 0.1\n    mode: max\n",
			want: []string{"run.yaml:3: training.early_stopping.monitor: is only used with training.early_stopping.enabled: true",
				"run.yaml:6: training.early_stopping.mode: is only used", "run.yaml:4: training.early_stopping.patience: is only used", "run.yaml:5: training.early_stopping.min_delta: is only used"}},
		{name: "early stopping settings enabled", sets: []string{"training.early_stopping.enabled=true", "training.early_stopping.patience=1"}},
		{name: "early stopping with no validation before the end", sets: []string{"training.max_steps=5", "training.early_stopping.enabled=true"},
			want: []string{"--set training.early_stopping.enabled=true: training.early_stopping.enabled: early stopping acts at validation, and with training.eval.every 80 and max_steps 5 the only validation during training is at the last step"}},
		{name: "early stopping with validation before the end", sets: []string{"training.max_steps=5", "training.eval.every=2", "training.early_stopping.enabled=true"}},
		{name: "top_k with no validation before the end", sets: []string{"training.max_steps=80", "training.checkpointing.top_k=3"},
			want: []string{"--set training.checkpointing.top_k=3: training.checkpointing.top_k: top_k 3 keeps the checkpoints val/loss ranks best, but with training.eval.every 80 and max_steps 80"}},
		{name: "default top_k on a short run", sets: []string{"training.max_steps=5"}},
		{name: "mode without monitor", sets: []string{"training.checkpointing.top_k=0", "training.checkpointing.monitor=", "training.checkpointing.mode=max"},
			want: []string{"training.checkpointing.mode: max ranks checkpoints by training.checkpointing.monitor, which is empty"}},
		{name: "max_length below the minimum", yaml: "data:\n  max_length: 4\n", want: []string{"run.yaml:2: data.max_length: must be >= 16 tokens, got 4"}},
		{name: "max_length at the minimum", sets: []string{"data.max_length=16"}},
		{name: "mlp_chunk_tokens negative", yaml: "training:\n  mlp_chunk_tokens: -7\n", want: []string{"run.yaml:2: training.mlp_chunk_tokens: must be >= 0"}},
		{name: "prompt_dropout 1.5", yaml: "data:\n  augment:\n    prompt_dropout: 1.5\n", want: []string{"run.yaml:3: data.augment.prompt_dropout: must be a probability in [0, 1) (0 = off), got 1.5"}},
		{name: "prompt_dropout 1", sets: []string{"data.augment.prompt_dropout=1"}, want: []string{"data.augment.prompt_dropout: must be a probability in [0, 1)"}},
		{name: "dedup nan", sets: []string{"data.augment.dedup=.nan"}, want: []string{"data.augment.dedup: must be a similarity in [0, 1]"}},
		{name: "rephrase above 1", sets: []string{"data.augment.rephrase=2"}, want: []string{"data.augment.rephrase: must be a probability in [0, 1]"}},
		{name: "augment in range", sets: []string{"data.augment.dedup=1", "data.augment.rephrase=1", "data.augment.prompt_dropout=0.1"}},
		{name: "template gemma", sets: []string{"data.template=gemma"}},
		{name: "template phi3", yaml: "data:\n  template: phi3\n"},
		{name: "template phi4", sets: []string{"data.template=phi4"}},
		{name: "format tsv", sets: []string{"data.files=[a.tsv]", "data.format=tsv"}},
		{name: "several problems at once", sets: []string{"training.lora.r=0", "training.batch_size=0"},
			want: []string{"training.lora.r: must be > 0", "training.batch_size: must be > 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			if tc.yaml != "" {
				var err error
				if cfg, err = Parse([]byte(tc.yaml), "run.yaml"); err != nil {
					t.Fatal(err)
				}
			}
			if err := Apply(cfg, tc.sets); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validated, want %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg, at := err.Error(), 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error\n%s\nlacks (in order)\n%s", msg, w)
				}
				at += i + len(w)
			}
		})
	}
}

// TestSetInCodeNamedInMessage: a value set in code has no file line to
// point at, and is not a default either.
func TestSetInCodeNamedInMessage(t *testing.T) {
	cfg := Default()
	cfg.Training.LoRA.R = 0
	err := cfg.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "training.lora.r (set in code): must be > 0") {
		t.Fatalf("got %v", err)
	}
	// Changed in code after a file was read: still not the file's line,
	// nor a default.
	cfg, err = Parse([]byte("training:\n  max_steps: 30\n"), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Training.Optimizer.LR = -1
	cfg.Data.Weights = map[string]float64{"a": 1}
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "training.optimizer.lr (set in code): must be > 0, got -1") ||
		!strings.Contains(err.Error(), "data.weights (set in code): are only used with mixing: weights") {
		t.Fatalf("got %v", err)
	}
	// A conflict between a default and a value set in code is blamed on
	// the latter (checkPair).
	cfg = Default()
	cfg.Training.Checkpointing.Monitor = ""
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "training.checkpointing.monitor (set in code): top_k 1 needs") {
		t.Fatalf("got %v", err)
	}
}

// TestDefaultNamedInMessage: a default that conflicts with a value set in
// code is still called the default.
func TestDefaultNamedInMessage(t *testing.T) {
	cfg := Default()
	if got := cfg.Where("training.lora.r"); got != "default" {
		t.Fatalf("Where of an unchanged default: %q", got)
	}
	cfg.Training.LoRA.R = 8
	cfg.Data.Weights = map[string]float64{"a": 1}
	for path, want := range map[string]string{"training.lora.r": "set in code", "training.lora.alpha": "default",
		"data.weights": "set in code", "data.weights.a": "set in code", "data.weights.b": "default", "training.lora.targets[0]": "default"} {
		if got := cfg.Where(path); got != want {
			t.Errorf("Where(%s) = %q, want %q", path, got, want)
		}
	}
}
