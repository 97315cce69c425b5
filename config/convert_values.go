package config

// The conversions of the keys whose value reads otherwise in ftune than
// in the trainer that wrote it (Convert).

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// pathText refuses a path (kept as written, not expanded: the other
// trainers read it literally) that holds a NUL byte, as ExpandPath
// refuses one in a run file: no path holds one, and the written file
// would not load.
func (c *converter) pathText(k, path string) bool {
	if i := strings.IndexByte(path, 0); i >= 0 {
		c.fail(k, "%q: a NUL byte at byte %d: no path holds one", path, i)
		return false
	}
	return true
}

// hubIDPattern matches a Hugging Face Hub repository id, owner/name.
var hubIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// IsHubID says whether a model or data path that names nothing here reads
// as a Hugging Face Hub id (owner/name), as other trainers' configs name
// what they download: an error can then say that ftune does not download.
func IsHubID(path string) bool { return hubIDPattern.MatchString(path) }

// model converts base_model / model_name_or_path: a local model folder
// is model.path; anything else is a Hugging Face Hub id, which ftune does
// not download: it is kept as model.path, which training refuses until a
// folder of that name holds the model, and the note says how to get it.
func (c *converter) model(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	if !c.pathText(k, s) {
		return
	}
	c.cfg.Model.Path = s
	c.mark(k, "model.path")
	if st, err := os.Stat(s); (err == nil && st.IsDir()) || s == Default().Model.Path {
		return // a folder, or the embedded model
	}
	if !IsHubID(s) {
		c.note(k, false, "%s is not a folder here: set model.path to the model's folder; training refuses it until then", s)
		return
	}
	c.note(k, false, "%s is not a folder here, and ftune does not download models: model.path names it until you do (hf download %s --local-dir %s), or set model.path to the model's folder; training refuses it until then", s, s, s)
}

// maxCount bounds a count that a conversion computes as a float (epochs,
// micro-batches): larger, it would not survive the conversion to an int.
// The run file's own counts are bounded by their decoder (int64).
const maxCount = math.MaxInt32

// epochs converts num_epochs / num_train_epochs: ftune counts whole
// epochs (training.max_epochs), which decide only when max_steps is 0,
// as they do in the other trainers when max_steps is not set.
func (c *converter) epochs(k string, n *yaml.Node) {
	f, ok := c.number(k, n)
	if !ok {
		return
	}
	if f <= 0 || f != math.Trunc(f) {
		c.fail(k, "%v: ftune trains whole epochs (training.max_epochs); set max_steps for a part of one", f)
		return
	}
	if f > maxCount {
		c.fail(k, "%v: want a whole number of epochs, at most %d", f, maxCount)
		return
	}
	if m := c.value("max_steps"); m != nil && !null(m) && m.Value != "-1" && m.Value != "0" {
		c.note(k, true, "max_steps is set, and %s then trains that many steps whatever the epochs", c.trainer)
		return
	}
	c.setTo(k, "training.max_epochs", int(f))
	c.setTo(k, "training.max_steps", 0)
}

// batchSize converts Axolotl's batch_size: the examples per optimizer
// step, of which micro_batch_size go in each forward pass; Axolotl derives
// gradient_accumulation_steps from it (on one GPU: ftune trains in one
// process).
func (c *converter) batchSize(k string, n *yaml.Node) {
	if c.trainer != "Axolotl" {
		c.set(k, "training.batch_size", n)
		return
	}
	if c.has("gradient_accumulation_steps") {
		c.fail(k, "set beside gradient_accumulation_steps: Axolotl takes one or the other (remove one)")
		return
	}
	total, ok := c.number(k, n)
	if !ok {
		return
	}
	micro := 1.0
	if m := c.value("micro_batch_size"); m != nil {
		if micro, ok = c.number("micro_batch_size", m); !ok {
			return
		}
	}
	accum := total / micro
	if micro <= 0 || total <= 0 || accum != math.Trunc(accum) {
		c.fail(k, "%v is not a multiple of micro_batch_size %v: Axolotl's gradient_accumulation_steps is batch_size / micro_batch_size (a whole number)", total, micro)
		return
	}
	if accum > maxCount {
		c.fail(k, "%v rows a step: want at most %d micro-batches of micro_batch_size %v (training.grad_accum)", total, maxCount, micro)
		return
	}
	c.setTo(k, "training.grad_accum", int(accum))
	c.note(k, false, "%v rows a step: training.grad_accum %d micro-batches of micro_batch_size %v (Axolotl divides the accumulation by the number of GPUs; ftune trains in one process)", total, int(accum), micro)
}

// objective converts LLaMA-Factory's stage and Axolotl's rl.
func (c *converter) objective(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	switch {
	case s == "sft" || s == "dpo" || s == "kto":
		c.setTo(k, "training.objective", s)
	case k == "rl" && (s == "ipo" || s == "orpo" || s == "simpo"):
		// Axolotl's rl names the preference loss: ftune's dpo objective
		// computes each as a loss type (TRL's).
		c.setTo(k, "training.objective", "dpo")
		c.setTo(k, "training.dpo.loss_type", s)
	default:
		c.fail(k, "%q is not offered: %s", s, explained[k])
	}
}

// prefLoss converts LLaMA-Factory's pref_loss (its DPO loss).
func (c *converter) prefLoss(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	switch s {
	case "sigmoid", "hinge", "ipo", "orpo", "simpo":
		c.setTo(k, "training.dpo.loss_type", s)
	default:
		c.fail(k, "%q is not offered: training.dpo.loss_type takes sigmoid, hinge, ipo, orpo or simpo", s)
	}
}

// schedule converts lr_scheduler / lr_scheduler_type: transformers'
// names are ftune's; Axolotl's cosine with cosine_min_lr_ratio decays to
// that floor, which is transformers' cosine_with_min_lr.
func (c *converter) schedule(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	if alias, ok := valueSynonyms[s]; ok {
		s = alias
	}
	if s == "cosine" && c.has("cosine_min_lr_ratio") {
		s = "cosine_with_min_lr"
	}
	if !slices.Contains(schedules, s) {
		c.fail(k, "%q is not offered: training.schedule.name takes %s", n.Value, strings.Join(schedules, ", "))
		return
	}
	c.setTo(k, "training.schedule.name", s)
}

// scheduleKwargs converts transformers' lr_scheduler_kwargs: each is the
// ftune schedule key of its name (min_lr_rate, num_cycles, power,
// lr_end); min_lr, an absolute rate, is a fraction of the peak in ftune.
func (c *converter) scheduleKwargs(k string, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		c.fail(k, "want a section of keys, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := n.Content[i].Value, resolve(n.Content[i+1])
		switch name {
		case "min_lr_rate", "num_cycles", "power", "lr_end":
			c.set(k, "training.schedule."+name, v)
		case "min_lr":
			// An absolute rate: a fraction of the file's learning_rate
			// (not of ftune's default, which is not the other trainer's).
			p := c.value("learning_rate")
			if p == nil {
				c.fail(k, "min_lr is a rate, and ftune's min_lr_rate a fraction of the peak: set learning_rate too, or min_lr_rate")
				continue
			}
			lr, ok1 := c.number(k, v)
			peak, ok2 := c.number("learning_rate", p)
			if ok1 && ok2 && peak > 0 {
				c.setTo(k, "training.schedule.min_lr_rate", lr/peak)
			}
		default:
			c.fail(k, "%s is not offered: ftune's schedules read min_lr_rate, min_lr, num_cycles, power and lr_end", name)
		}
	}
}

// warmupSteps converts warmup_steps; Axolotl makes 1 step 2.
func (c *converter) warmupSteps(k string, n *yaml.Node) {
	f, ok := c.number(k, n)
	if !ok {
		return
	}
	if f == 1 && c.trainer == "Axolotl" {
		c.setTo(k, "training.schedule.warmup_steps", 2)
		c.note(k, false, "1: Axolotl warms up for 2 steps when told 1, and so does the converted run")
		return
	}
	c.set(k, "training.schedule.warmup_steps", n)
}

// warmupRatio converts warmup_ratio. transformers warms up for
// ceil(ratio × steps), as ftune does; Axolotl for floor(ratio × steps)
// (2 when that is 1), so with max_steps known it is converted to those
// steps. warmup_steps, when above 0, wins in both.
func (c *converter) warmupRatio(k string, n *yaml.Node) {
	f, ok := c.number(k, n)
	if !ok {
		return
	}
	if w := c.value("warmup_steps"); w != nil && !null(w) && w.Value != "0" {
		c.note(k, true, "warmup_steps is set, and %s then uses it", c.trainer)
		return
	}
	if c.has("warmup_steps") {
		c.consume("warmup_steps") // 0: the ratio decides
	}
	if f == 0 {
		// No warmup: the other trainers' warmup_steps is 0 by default,
		// ftune's is not.
		c.setTo(k, "training.schedule.warmup_steps", 0)
		return
	}
	if c.trainer != "Axolotl" {
		c.set(k, "training.schedule.warmup_ratio", n)
		return
	}
	// A ratio out of [0, 1) is set as it is, for validation to refuse.
	if m := c.value("max_steps"); m != nil && f > 0 && f < 1 {
		if steps, err := strconv.Atoi(m.Value); err == nil && steps > 0 {
			w := int(math.Floor(f * float64(steps)))
			if w == 1 {
				w = 2
			}
			c.setTo(k, "training.schedule.warmup_steps", w)
			c.note(k, false, "%v of max_steps %d: %d warmup steps, as Axolotl rounds them (down)", f, steps, w)
			return
		}
	}
	if c.set(k, "training.schedule.warmup_ratio", n) {
		c.note(k, false, "ftune warms up for ceil(ratio × steps) as transformers does; Axolotl rounds down, so the run may warm up one step longer")
	}
}

// optimizer converts transformers' optim names: the AdamW
// implementations are ftune's AdamW; the 8-bit ones keep their moments in
// 8 bits, ftune in float32 (the same update, but for that rounding, in
// more memory).
func (c *converter) optimizer(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	switch s {
	case "adamw", "adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw_apex_fused", "paged_adamw_32bit", "adamw_anyprecision":
		c.setTo(k, "training.optimizer.name", "adamw")
	case "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "adamw_torch_8bit":
		c.setTo(k, "training.optimizer.name", "adamw")
		c.note(k, false, "%s keeps AdamW's moments in 8 bits; ftune's AdamW keeps them in float32 (the same update, unrounded, in more memory)", s)
	case "sgd":
		c.setTo(k, "training.optimizer.name", "sgd")
	default:
		c.fail(k, "%q is not offered: ftune's optimizers are AdamW (adamw_torch, adamw_torch_fused, adamw_8bit ...) and SGD (sgd)", s)
	}
}

// betas converts adam_beta1 and adam_beta2 together into
// training.optimizer.betas, the one not set keeping its default.
func (c *converter) betas(k string) {
	c.consume("adam_beta1", "adam_beta2")
	betas := slices.Clone(c.cfg.Training.Optimizer.Betas)
	for i, key := range []string{"adam_beta1", "adam_beta2"} {
		if n := c.value(key); n != nil && !null(n) {
			f, ok := c.number(key, n)
			if !ok {
				return
			}
			betas[i] = f
		}
	}
	c.setTo(k, "training.optimizer.betas", betas)
}

// targets converts lora_target_modules (a list), LLaMA-Factory's
// lora_target (q_proj,v_proj or all) and PEFT's target_modules
// (all-linear); with Axolotl's lora_target_linear true, every linear
// layer is adapted whatever the list says.
func (c *converter) targets(k string, n *yaml.Node) {
	if v := c.value("lora_target_linear"); v != nil && v.Value == "true" {
		c.note(k, true, "lora_target_linear is true: every linear layer is adapted (all-linear)")
		return
	}
	if n.Kind == yaml.ScalarNode && (n.Value == "all" || n.Value == "all-linear" || n.Value == "all_linear") {
		c.setTo(k, "training.lora.targets", "all-linear")
		return
	}
	c.set(k, "training.lora.targets", n)
}

// template converts Axolotl's chat_template and LLaMA-Factory's template:
// the names of ftune's built-in templates, and the tokenizer's own
// (tokenizer_default: ftune's auto). Another name is a template of that
// trainer's: the run keeps the model's own (auto), and the note says so.
func (c *converter) template(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	switch {
	case s == "tokenizer_default":
		c.setTo(k, "data.template", "auto")
	case s == "phi_3":
		c.setTo(k, "data.template", "phi3")
	case slices.Contains(templates, s):
		c.setTo(k, "data.template", s)
	default:
		c.note(k, true, "%q is %s's own template, not one of ftune's (%s): the run renders conversations with the model's own chat template (data.template: auto); see them with ftune data validate --show 2", s, c.trainer, strings.Join(templates, ", "))
	}
}

// metric converts metric_for_best_model: transformers' loss (eval_loss)
// is ftune's val/loss.
func (c *converter) metric(k string, n *yaml.Node) {
	s, ok := c.scalar(k, n)
	if !ok {
		return
	}
	if s != "loss" && s != "eval_loss" {
		c.fail(k, "%q cannot be converted: ftune ranks checkpoints by val/loss, val/perplexity or val/token_accuracy (training.checkpointing.monitor)", s)
		return
	}
	c.setTo(k, "training.checkpointing.monitor", "val/loss")
}

// precision converts bf16: true asks bf16 products (ftune's precision
// bf16, refused on a CPU without them), auto is ftune's auto, false with
// fp16 false is float32 throughout.
func (c *converter) precision(k string, n *yaml.Node) {
	if n.Value == "auto" {
		c.setTo(k, "training.precision", "auto")
		return
	}
	b, ok := c.boolean(k, n)
	switch {
	case !ok:
	case b:
		c.setTo(k, "training.precision", "bf16")
	case c.value("fp16") != nil && c.value("fp16").Value == "true":
		c.note(k, true, "false, with fp16 true: see fp16")
	default:
		c.setTo(k, "training.precision", "f32")
	}
}

// theirDefault is a setting that the other trainer's file may leave out,
// whose default there is not ftune's: left to ftune's, the converted run
// would not be the run the file trained. Each trainer's are read from its
// own source (theirDefaultsOf).
type theirDefault struct {
	// key is the trainer's name of the setting; paths the ftune keys its
	// default sets.
	key   string
	paths []string
	// value is the default as the trainer states it.
	value string
	// apply sets the default and may return a word more (how the run
	// differs still); nil when ftune has no equivalent, or the default is
	// not one value: the note then says why, and ftune's default applies.
	apply func(c *converter) string
	why   string
	// also are the trainer's other keys that, set, make a said-only
	// default moot.
	also []string
}

// transformersDefaults are TrainingArguments' defaults (transformers'
// src/transformers/training_args.py, v4 through v5) that are not ftune's. Its adam_beta1
// 0.9, adam_beta2 0.999, adam_epsilon 1e-8, weight_decay 0,
// max_grad_norm 1, per_device_train_batch_size 8,
// gradient_accumulation_steps 1, seed 42 and optim (an AdamW) are
// ftune's too.
func transformersDefaults() []theirDefault {
	return []theirDefault{
		{key: "learning_rate", paths: []string{"training.optimizer.lr"}, value: "5e-05",
			apply: func(c *converter) string {
				c.cfg.Training.Optimizer.LR = 5e-5
				if c.trainer != "transformers" {
					return ""
				}
				return "TRL's configs default otherwise (SFTConfig 2e-05, DPOConfig 1e-06): if this file is TRL's, set learning_rate"
			}},
		{key: "lr_scheduler_type", paths: []string{"training.schedule.name"}, value: "linear",
			apply: func(c *converter) string { c.cfg.Training.Schedule.Name = "linear"; return "" }},
		{key: "num_train_epochs", paths: []string{"training.max_epochs", "training.max_steps"}, value: "3 (max_steps -1: the epochs decide)",
			apply: epochsDefault(3)},
		{key: "warmup_steps", paths: []string{"training.schedule.warmup_steps", "training.schedule.warmup_ratio"}, value: "0 (warmup_ratio 0): no warmup",
			apply: func(c *converter) string {
				c.cfg.Training.Schedule.WarmupSteps, c.cfg.Training.Schedule.WarmupRatio = 0, 0
				return ""
			}},
		{key: "bf16", value: "false (fp16 false)", also: []string{"fp16"},
			why: "whether the run computed in float32 rests on the dtype the script loaded the model in, which this file does not say: ftune's training.precision auto applies (set bf16 to choose)"},
		{key: "logging_steps", value: "500 (logging_strategy steps)", also: []string{"logging_strategy"},
			why: "ftune's training.log_every applies: logging changes no weight"},
		{key: "eval_strategy", value: "no: no evaluation", also: []string{"evaluation_strategy", "eval_steps", "do_eval"},
			why: "ftune's training.eval.every and data.val_split apply (TrainingArguments names no data): evaluating changes no weight, holding data out does"},
		{key: "save_steps", value: "500, every checkpoint kept (save_total_limit none)", also: []string{"save_strategy", "save_total_limit"},
			why: "ftune's training.checkpointing applies: saving changes no weight"},
	}
}

// llamaFactoryDefaults are LLaMA-Factory's defaults (src/llamafactory/
// hparams/finetuning_args.py LoraArguments, data_args.py DataArguments and
// parser.py, as its main branch holds them) and those of transformers' TrainingArguments,
// which its training arguments extend without changing these.
func llamaFactoryDefaults() []theirDefault {
	return append([]theirDefault{
		{key: "lora_rank", paths: []string{"training.lora.r"}, value: "8",
			apply: func(c *converter) string { c.cfg.Training.LoRA.R = 8; return "" }},
		{key: "lora_alpha", paths: []string{"training.lora.alpha"}, value: "twice lora_rank",
			apply: func(c *converter) string { c.cfg.Training.LoRA.Alpha = 2 * float64(c.cfg.Training.LoRA.R); return "" }},
		{key: "lora_dropout", paths: []string{"training.lora.dropout"}, value: "0",
			apply: func(c *converter) string { c.cfg.Training.LoRA.Dropout = 0; return "" }},
		{key: "lora_target", paths: []string{"training.lora.targets"}, value: "all",
			apply: func(c *converter) string { c.cfg.Training.LoRA.Targets = []string{"all-linear"}; return "" }},
		{key: "cutoff_len", paths: []string{"data.max_length"}, value: "2048",
			apply: func(c *converter) string {
				c.cfg.Data.MaxLength = 2048
				return "LLaMA-Factory does not hold it to the model's positions, and ftune refuses a data.max_length past them: lower it for a model of fewer"
			}},
		{key: "val_size", paths: []string{"data.val_split", "training.checkpointing.monitor", "training.checkpointing.top_k"}, value: "0: no validation data",
			apply: noValidation},
		{key: "packing", paths: []string{"data.packing"}, value: "false but for pre-training (stage pt)",
			apply: func(c *converter) string { c.cfg.Data.Packing = false; return "" }},
		{key: "bf16", value: "false (fp16 false)", also: []string{"fp16"},
			why: "LLaMA-Factory then loads the model in the dtype its config and the device suggest (bf16 where supported): ftune's training.precision auto applies (set bf16 to choose)"},
	}, slices.DeleteFunc(transformersDefaults(), func(d theirDefault) bool {
		return d.key == "bf16" || d.key == "eval_strategy" // said above; val_size says it
	})...)
}

// axolotlDefaults are Axolotl's defaults (src/axolotl/utils/schemas/
// training.py, config.py, peft.py, and its trainer builder's warmup, as
// its main branch holds them). Its lr_scheduler cosine, weight_decay 0, gradient_accumulation_steps 1,
// train_on_inputs false, bf16 auto and optimizer (an AdamW, with
// transformers' betas, epsilon, max_grad_norm and seed) are ftune's too;
// learning_rate it requires, and lora_r and lora_alpha have none.
func axolotlDefaults() []theirDefault {
	return []theirDefault{
		{key: "num_epochs", paths: []string{"training.max_epochs", "training.max_steps"}, value: "1",
			apply: epochsDefault(1)},
		{key: "warmup_steps", paths: []string{"training.schedule.warmup_steps", "training.schedule.warmup_ratio"}, value: "3% of the steps, rounded down, at most 100 (2 when 1)",
			apply: func(c *converter) string {
				s := &c.cfg.Training.Schedule
				if steps := c.cfg.Training.MaxSteps; steps > 0 {
					w := min(int(math.Floor(0.03*float64(steps))), 100)
					if w == 1 {
						w = 2
					}
					s.WarmupSteps, s.WarmupRatio = w, 0
					return ""
				}
				// The ratio decides; warmup_steps stays ftune's, unmarked
				// (a chosen one beside a ratio is refused).
				s.WarmupRatio = 0.03
				c.unmarked = "training.schedule.warmup_steps"
				return "ftune warms up for 3% of the steps rounded up, and past 100 steps: set warmup_steps to match a run of more than 3333 steps"
			}},
		{key: "micro_batch_size", paths: []string{"training.batch_size"}, value: "1",
			apply: func(c *converter) string { c.cfg.Training.BatchSize = 1; return "" }},
		{key: "sequence_len", paths: []string{"data.max_length"}, value: "512",
			apply: func(c *converter) string { c.cfg.Data.MaxLength = 512; return "" }},
		{key: "sample_packing", paths: []string{"data.packing"}, value: "false",
			apply: func(c *converter) string { c.cfg.Data.Packing = false; return "" }},
		{key: "val_set_size", paths: []string{"data.val_split", "training.checkpointing.monitor", "training.checkpointing.top_k"}, value: "0: no validation data",
			apply: noValidation},
		{key: "lora_dropout", paths: []string{"training.lora.dropout"}, value: "0",
			apply: func(c *converter) string { c.cfg.Training.LoRA.Dropout = 0; return "" }},
		{key: "lora_target_modules", also: []string{"lora_target_linear"}, value: "none (nor lora_target_linear): PEFT adapts the modules it knows for the model's type (q_proj and v_proj for LLaMA)",
			why: "not one list for every model: ftune's training.lora.targets all-linear applies (set lora_target_modules to choose)"},
		{key: "logging_steps", value: "0.5% of the steps, from 1 to 10",
			why: "ftune's training.log_every applies: logging changes no weight"},
	}
}

// epochsDefault trains n epochs, the epochs deciding (max_steps 0).
func epochsDefault(n int) func(*converter) string {
	return func(c *converter) string {
		c.cfg.Training.MaxEpochs, c.cfg.Training.MaxSteps = n, 0
		return ""
	}
}

// noValidation holds no data out; nothing then ranks checkpoints (ftune
// ranks them by val/loss).
func noValidation(c *converter) string {
	c.cfg.Data.ValSplit = 0
	c.cfg.Training.Checkpointing.Monitor, c.cfg.Training.Checkpointing.TopK = "", 0
	return ""
}

// theirDefaults sets what the file leaves to its trainer's defaults
// (theirDefault) where they are not ftune's: each set counts as chosen,
// its line marked as the trainer's default, and is said; one with no
// ftune equivalent is said, ftune's default applying. A setting the file
// set (its ftune key marked; for one said only, its key present) keeps
// the file's value.
func (c *converter) theirDefaults() {
	var table []theirDefault
	switch c.trainer {
	case "Axolotl":
		table = axolotlDefaults()
	case "LLaMA-Factory":
		table = llamaFactoryDefaults()
	default:
		table = transformersDefaults()
	}
	for _, d := range table {
		if d.apply == nil {
			if !slices.ContainsFunc(append([]string{d.key}, d.also...), func(k string) bool { v := c.value(k); return v != nil && !null(v) }) {
				c.notes = append(c.notes, Note{Where: c.name, Key: d.key, Msg: fmt.Sprintf("not set there: %s's default, %s, is not applied: %s", c.trainer, d.value, d.why)})
			}
			continue
		}
		if slices.ContainsFunc(d.paths, func(p string) bool { _, ok := c.marks[p]; return ok }) {
			continue
		}
		was := map[string]string{}
		for _, p := range d.paths {
			was[p] = reflectString(c.cfg, p)
		}
		c.unmarked = ""
		more := d.apply(c)
		mark := c.trainer + "'s default of " + d.key
		shown := ""
		for _, p := range d.paths {
			if p == c.unmarked {
				continue
			}
			if shown == "" {
				shown = p
			}
			c.marks[p] = mark
			c.cfg.setSource(p, c.name+" ("+mark+")", false)
		}
		msg := fmt.Sprintf("not set there: %s, %s, applies: %v (ftune's default is %s)", mark, d.value, reflectString(c.cfg, shown), was[shown])
		if more != "" {
			msg += "; " + more
		}
		c.notes = append(c.notes, Note{Where: c.name, Key: shown, Msg: msg})
	}
}

// unset says which of the settings that shape a run most the file leaves
// to ftune's default, which is not the other trainer's.
func (c *converter) unset() {
	for _, path := range []string{"model.path", "training.optimizer.lr", "training.lora.r", "training.lora.alpha"} {
		if _, ok := c.marks[path]; !ok {
			c.notes = append(c.notes, Note{Where: c.name, Key: path, Msg: fmt.Sprintf("not set there: ftune's default %v applies", reflectString(c.cfg, path))})
		}
	}
}

func reflectString(cfg *RunConfig, path string) string {
	v, _ := valueAt(reflect.ValueOf(cfg).Elem(), path)
	return fmt.Sprint(v.Interface())
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
