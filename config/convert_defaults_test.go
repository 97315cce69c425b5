package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestConvertTheirDefaults: a key that the file leaves out takes its
// trainer's default where that is not ftune's (a transformers file
// trains at 5e-05, linear, no warmup, for 3 epochs; an Axolotl one 1
// epoch of micro-batches of 1 rows of 512 tokens, unpacked, with no
// validation data and no LoRA dropout; a LLaMA-Factory one
// transformers' schedule with its own cutoff_len, val_size and packing),
// each line marked as that trainer's default, counted as chosen and said;
// a default with no ftune equivalent is said, not applied.
func TestConvertTheirDefaults(t *testing.T) {
	for _, c := range []struct {
		name, src string
		check     func(*RunConfig) bool
		marked    []string // lines of the written file
		said      []string // notes
	}{
		{"transformers", "model_name_or_path: x/y\n", func(c *RunConfig) bool {
			s := c.Training.Schedule
			w, _ := c.Warmup()
			return c.Training.Optimizer.LR == 5e-5 && s.Name == "linear" && w == 0 && s.WarmupRatio == 0 &&
				c.Training.MaxEpochs == 3 && c.Training.MaxSteps == 0 &&
				c.Data.ValSplit == Default().Data.ValSplit && c.Data.MaxLength == Default().Data.MaxLength
		}, []string{
			"  lr: 5e-05 # transformers's default of learning_rate\n",
			"    name: linear # transformers's default of lr_scheduler_type\n",
			"    warmup_steps: 0 # transformers's default of warmup_steps\n",
			"  max_epochs: 3 # transformers's default of num_train_epochs\n",
			"  max_steps: 0 # transformers's default of num_train_epochs\n",
		}, []string{
			"c.yaml: training.optimizer.lr: not set there: transformers's default of learning_rate, 5e-05, applies: 5e-05 (ftune's default is 0.002)",
			"c.yaml: bf16: not set there: transformers's default, false (fp16 false), is not applied",
			"c.yaml: training.lora.r: not set there: ftune's default 16 applies",
		}},
		{"Axolotl", "base_model: x/y\n", func(c *RunConfig) bool {
			s := c.Training.Schedule
			return c.Training.MaxEpochs == 1 && c.Training.MaxSteps == 0 && s.WarmupRatio == 0.03 &&
				s.WarmupSteps == DefaultWarmupSteps && !c.Chose("training.schedule.warmup_steps") &&
				c.Training.BatchSize == 1 && c.Data.MaxLength == 512 && !c.Data.Packing &&
				c.Data.ValSplit == 0 && c.Training.Checkpointing.Monitor == "" && c.Training.Checkpointing.TopK == 0 &&
				c.Training.LoRA.Dropout == 0 && c.Training.LoRA.R == Default().Training.LoRA.R &&
				c.Training.Optimizer.LR == Default().Training.Optimizer.LR && c.Training.Schedule.Name == "cosine"
		}, []string{
			"  max_epochs: 1 # Axolotl's default of num_epochs\n",
			"    warmup_ratio: 0.03 # Axolotl's default of warmup_steps\n",
			"  batch_size: 1 # Axolotl's default of micro_batch_size\n",
			"  max_length: 512 # Axolotl's default of sequence_len\n",
			"  packing: false # Axolotl's default of sample_packing\n",
			"  val_split: 0.0 # Axolotl's default of val_set_size\n",
			"    dropout: 0.0 # Axolotl's default of lora_dropout\n",
			"    monitor: \"\" # Axolotl's default of val_set_size\n",
		}, []string{
			"c.yaml: training.schedule.warmup_ratio: not set there: Axolotl's default of warmup_steps, 3% of the steps, rounded down, at most 100 (2 when 1), applies: 0.03 (ftune's default is 0); ftune warms up for 3% of the steps rounded up",
			"c.yaml: lora_target_modules: not set there: Axolotl's default, none (nor lora_target_linear)",
			"c.yaml: training.optimizer.lr: not set there: ftune's default 0.002 applies",
		}},
		// With max_steps known, Axolotl's warmup is its steps.
		{"Axolotl", "base_model: x/y\nmax_steps: 1000\n", func(c *RunConfig) bool {
			s := c.Training.Schedule
			return c.Training.MaxSteps == 1000 && c.Training.MaxEpochs == 3 && s.WarmupSteps == 30 && s.WarmupRatio == 0 && c.Chose("training.schedule.warmup_steps")
		}, []string{"    warmup_steps: 30 # Axolotl's default of warmup_steps\n", "  max_steps: 1000 # from c.yaml:2 max_steps\n"}, nil},
		{"Axolotl", "base_model: x/y\nmax_steps: 40\n", func(c *RunConfig) bool { return c.Training.Schedule.WarmupSteps == 2 }, nil, nil},
		{"Axolotl", "base_model: x/y\nmax_steps: 10000\n", func(c *RunConfig) bool { return c.Training.Schedule.WarmupSteps == 100 }, nil, nil},
		{"LLaMA-Factory", "model_name_or_path: x/y\nstage: sft\n", func(c *RunConfig) bool {
			s := c.Training.Schedule
			w, _ := c.Warmup()
			return c.Training.Optimizer.LR == 5e-5 && s.Name == "linear" && w == 0 && c.Training.MaxEpochs == 3 && c.Training.MaxSteps == 0 &&
				c.Data.MaxLength == 2048 && c.Data.ValSplit == 0 && !c.Data.Packing && c.Training.LoRA.R == 8 && c.Training.LoRA.Alpha == 16
		}, []string{
			"  lr: 5e-05 # LLaMA-Factory's default of learning_rate\n",
			"  max_length: 2048 # LLaMA-Factory's default of cutoff_len\n",
			"  val_split: 0.0 # LLaMA-Factory's default of val_size\n",
			"  packing: false # LLaMA-Factory's default of packing\n",
		}, []string{
			"c.yaml: data.max_length: not set there: LLaMA-Factory's default of cutoff_len, 2048, applies: 2048 (ftune's default is 256)",
			"c.yaml: bf16: not set there: LLaMA-Factory's default, false (fp16 false), is not applied",
		}},
	} {
		conv, cfg, text := convertAndLoad(t, c.src, "c.yaml")
		if conv.Trainer != c.name {
			t.Fatalf("%q: trainer %s", c.src, conv.Trainer)
		}
		if !c.check(cfg) {
			t.Errorf("%q: converted to %+v\n%+v", c.src, cfg.Data, cfg.Training)
		}
		for _, l := range c.marked {
			if !strings.Contains(text, l) {
				t.Errorf("%q: the written file lacks %q", c.src, l)
			}
		}
		notes := notesOf(conv)
		for _, w := range c.said {
			if !strings.Contains(notes, w) {
				t.Errorf("%q: the notes lack %q:\n%s", c.src, w, notes)
			}
			if !strings.Contains(text, w) {
				t.Errorf("%q: the written file lacks %q", c.src, w)
			}
		}
		for _, p := range []string{"training.optimizer.lr", "training.max_epochs", "data.max_length", "data.val_split"} {
			if strings.Contains(text, c.name+"'s default of") && strings.Contains(notes, "c.yaml: "+p+": not set there: "+c.name) && !cfg.Chose(p) {
				t.Errorf("%q: %s holds %s's default and does not count as chosen", c.src, p, c.name)
			}
		}
	}
}

// TestConvertKeepsWhatTheFileSets: a key the file sets keeps its value
// and its "# from" mark; its trainer's default does not replace it, nor
// is it said.
func TestConvertKeepsWhatTheFileSets(t *testing.T) {
	for _, c := range []struct {
		src    string
		check  func(*RunConfig) bool
		marked []string
	}{
		{"model_name_or_path: x/y\nlearning_rate: 1e-4\nlr_scheduler_type: cosine\nwarmup_steps: 5\nnum_train_epochs: 2\n", func(c *RunConfig) bool {
			return c.Training.Optimizer.LR == 1e-4 && c.Training.Schedule.Name == "cosine" && c.Training.Schedule.WarmupSteps == 5 && c.Training.MaxEpochs == 2
		}, []string{"  lr: 0.0001 # from c.yaml:2 learning_rate\n", "    name: cosine # from c.yaml:3 lr_scheduler_type\n", "    warmup_steps: 5 # from c.yaml:4 warmup_steps\n", "  max_epochs: 2 # from c.yaml:5 num_train_epochs\n"}},
		// fp16 and evaluation_strategy (transformers' older name) say
		// what bf16 and eval_strategy would.
		{"model_name_or_path: x/y\nfp16: true\nevaluation_strategy: steps\n", func(c *RunConfig) bool { return true }, nil},
		// A ratio is the user's warmup: no default warmup_steps beside it.
		{"model_name_or_path: x/y\nwarmup_ratio: 0.1\nmax_steps: 50\n", func(c *RunConfig) bool {
			w, _ := c.Warmup()
			return c.Training.Schedule.WarmupRatio == 0.1 && w == 5 && c.Training.MaxSteps == 50
		}, []string{"    warmup_ratio: 0.1 # from c.yaml:2 warmup_ratio\n"}},
		{"base_model: x/y\nnum_epochs: 2\nwarmup_steps: 0\nmicro_batch_size: 4\nsequence_len: 1024\nsample_packing: true\nval_set_size: 0.05\nlora_dropout: 0.1\n", func(c *RunConfig) bool {
			return c.Training.MaxEpochs == 2 && c.Training.Schedule.WarmupSteps == 0 && c.Training.Schedule.WarmupRatio == 0 && c.Training.BatchSize == 4 &&
				c.Data.MaxLength == 1024 && c.Data.Packing && c.Data.ValSplit == 0.05 && c.Training.LoRA.Dropout == 0.1
		}, []string{"  max_length: 1024 # from c.yaml:5 sequence_len\n", "  packing: true # from c.yaml:6 sample_packing\n", "    dropout: 0.1 # from c.yaml:8 lora_dropout\n"}},
		// Axolotl's warmup_ratio is the user's, not its default 3%.
		{"base_model: x/y\nwarmup_ratio: 0.1\n", func(c *RunConfig) bool { return c.Training.Schedule.WarmupRatio == 0.1 }, []string{"    warmup_ratio: 0.1 # from c.yaml:2 warmup_ratio\n"}},
		{"stage: sft\ncutoff_len: 1024\nval_size: 0.2\npacking: true\nlearning_rate: 2e-4\nbf16: true\n", func(c *RunConfig) bool {
			return c.Data.MaxLength == 1024 && c.Data.ValSplit == 0.2 && c.Data.Packing && c.Training.Optimizer.LR == 2e-4 &&
				reflect.DeepEqual(c.Training.Checkpointing.Monitor, "val/loss")
		}, []string{"  max_length: 1024 # from c.yaml:2 cutoff_len\n", "  packing: true # from c.yaml:4 packing\n"}},
	} {
		conv, cfg, text := convertAndLoad(t, c.src, "c.yaml")
		if !c.check(cfg) {
			t.Errorf("%q: converted to %+v\n%+v", c.src, cfg.Data, cfg.Training)
		}
		for _, l := range c.marked {
			if !strings.Contains(text, l) {
				t.Errorf("%q: the written file lacks %q:\n%s", c.src, l, text)
			}
		}
		notes := notesOf(conv)
		for _, key := range []string{"learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "num_epochs", "micro_batch_size", "sequence_len", "sample_packing", "val_set_size", "lora_dropout", "cutoff_len", "val_size", "packing", "bf16"} {
			if strings.Contains(c.src, "\n"+key+":") && strings.Contains(notes, "default of "+key+",") {
				t.Errorf("%q: %s is set, and its default is said:\n%s", c.src, key, notes)
			}
		}
		if strings.Contains(c.src, "16:") && strings.Contains(notes, "bf16: not set there") {
			t.Errorf("%q: bf16 or fp16 is set, and bf16's default is said:\n%s", c.src, notes)
		}
		if strings.Contains(c.src, "_strategy:") && strings.Contains(notes, "eval_strategy: not set there") {
			t.Errorf("%q: evaluation_strategy is set, and eval_strategy's default is said:\n%s", c.src, notes)
		}
	}
}
