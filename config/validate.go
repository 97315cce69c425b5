package config

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/pymath"
)

// Accepted names. They mirror data/format, data/chat, optim and
// quant/nf4 rather than importing them, so that this package reads a run
// file without loading the engine; the CLI's end-to-end test catches a
// name one side accepts and the other does not.
var (
	dtypes      = []string{"auto", "bf16"}
	formats     = []string{"auto", "jsonl", "json", "csv", "tsv", "parquet", "text"}
	shapes      = []string{"auto", "alpaca", "chat", "sharegpt", "completion", "input_output", "preference", "unpaired_preference"}
	templates   = []string{"auto", "chatml", "llama3", "llama2", "mistral", "gemma", "phi3", "phi4", "alpaca", "none"}
	mixings     = []string{"proportional", "uniform", "weights"}
	optimizers  = []string{"adamw", "sgd"}
	schedules   = []string{"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr", "cosine_with_restarts", "polynomial", "warmup_stable_decay"}
	decayTypes  = []string{"cosine", "linear", "1-sqrt"}
	modes       = []string{"min", "max"}
	adapterSets = []string{"shared", "per-subject"}
	objectives  = []string{"sft", "dpo", "kto"}
	quantTypes  = []string{"nf4"}
	precisions  = []string{"auto", "bf16", "f32"}
	gemmProvs   = []string{"auto", "ftune", "cublaslt"}
	attnKernels = []string{"auto", "flash", "simt"}
	valMetrics  = []string{"loss", "perplexity", "token_accuracy"}
	deviceRE    = regexp.MustCompile(`^(auto|cpu|cuda(:[0-9]+)?)$`)
	runNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
)

type validator struct {
	cfg  *RunConfig
	errs ErrorList
}

// checkPair records a conflict between two settings against the one the
// user wrote (a or, when a is a default, b): that is the line to look at.
func (v *validator) checkPair(ok bool, a, b, format string, args ...any) {
	path := a
	if v.cfg.Where(a) == "default" && v.cfg.Where(b) != "default" {
		path = b
	}
	v.check(ok, path, format, args...)
}

// unused refuses a setting that differs from its default while the other
// settings make the run ignore it (used false): accepted, it would change
// nothing, silently. The default never trips it, wherever it came from
// (ftune init writes every default into the file).
func (v *validator) unused(used bool, path, format string, args ...any) {
	v.check(used || v.cfg.IsDefault(path), path, format, args...)
}

// check records msg against path when ok is false.
func (v *validator) check(ok bool, path, format string, args ...any) {
	if !ok {
		v.errs = append(v.errs, &FieldError{Where: v.cfg.Where(path), Path: path, Msg: fmt.Sprintf(format, args...), Kind: ErrInvalid})
	}
}

// valueSynonyms are other trainers' names for values ftune names
// otherwise: transformers' cosine and linear schedules warm up by
// themselves, so cosine_with_warmup (a spelling away from
// constant_with_warmup) is cosine.
var valueSynonyms = map[string]string{
	"cosine_with_warmup": "cosine",
	"linear_with_warmup": "linear",
	"cosine_annealing":   "cosine",
}

func (v *validator) oneOf(val, path string, allowed []string) {
	if slices.Contains(allowed, val) {
		return
	}
	msg := fmt.Sprintf("%q is not one of %s", val, strings.Join(allowed, ", "))
	if s, ok := valueSynonyms[val]; ok && slices.Contains(allowed, s) {
		msg += didYouMean(s) // before a near spelling, which would mislead
	} else if s := suggest(val, "", allowed); s != "" && !strings.Contains(s, ".") {
		msg += didYouMean(s)
	}
	v.check(false, path, "%s", msg)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Validate checks ranges and combinations. Every problem is reported, each
// with the file:line (or --set) its value came from.
func (c *RunConfig) Validate() error {
	v := &validator{cfg: c}
	m, d, t := &c.Model, &c.Data, &c.Training

	v.check(m.Path != "", "model.path", "must name a model folder or tiny-base")
	v.notImplemented(m.DType, "model.dtype", dtypes, []string{"f32", "f16"},
		"the frozen weights are kept as the checkpoint stores them (auto); converting them to another storage type is not implemented")

	v.checkPair(d.Root == "" || len(d.Files) == 0, "data.files", "data.root", "set data.root or data.files, not both")
	v.oneOf(d.Format, "data.format", formats)
	v.oneOf(d.Shape, "data.shape", shapes)
	// Subject folders are read by their files' extensions and their
	// records' keys; format and shape describe the user's own files.
	v.check(d.Format == "auto" || len(d.Files) > 0, "data.format", "%q applies to data.files only; a subject root is read by file extension (set data.files, or format: auto)", d.Format)
	v.check(d.Shape == "auto" || len(d.Files) > 0, "data.shape", "%q applies to data.files only; a subject root's records are recognised by their keys (set data.files, or shape: auto)", d.Shape)
	// Which keys a shape reads is data/subject's to say (the one check of
	// subject.yaml's columns and data.columns): recipe.FromConfig asks it.
	v.check(len(d.Columns) == 0 || len(d.Files) > 0, "data.columns", "applies to data.files only; a subject root's folders map their records' fields in their subject.yaml (shape, columns)")
	v.checkPair(len(d.Columns) == 0 || d.Shape != "auto" || len(d.Files) == 0, "data.columns", "data.shape", "names the fields of a shape's columns: set data.shape too (alpaca, chat, sharegpt, completion, input_output, preference or unpaired_preference)")
	if !IsTemplateFile(d.Template) {
		v.oneOf(d.Template, "data.template", templates)
	}
	v.oneOf(d.Thinking, "data.enable_thinking", []string{"auto", "true", "false"})
	v.checkPair(!(d.Template == "none" && d.MaskHistory), "data.mask_history", "data.template",
		"masks a conversation's earlier answers, and data.template none reads no conversations (only plain text and text prompt/completion pairs, each with one answer): drop one")
	// No built-in template reads enable_thinking: the setting would be
	// dropped. The model's own template and template files are checked
	// when the run loads them.
	v.check(d.Thinking == "auto" || d.Template == "auto" || IsTemplateFile(d.Template), "data.enable_thinking",
		"%s is set, but the built-in template %s does not read enable_thinking (only thinking models' templates, such as Qwen3's, do): set it to auto, or use the model's template", d.Thinking, d.Template)
	v.oneOf(d.TextUnit, "data.text_unit", []string{"auto", "line", "paragraph", "file"})
	v.oneOf(d.LongText, "data.long_text", []string{"split", "truncate"})
	v.check(d.LongText == "split" || t.Objective == "sft", "data.long_text",
		"%s applies to supervised plain text; training.objective %s reads preference records, whose long prompts and completions are truncated whatever it says", d.LongText, t.Objective)
	v.check(d.MaxLength >= MinMaxLength, "data.max_length", "must be >= %d tokens, got %d", MinMaxLength, d.MaxLength)
	v.check(d.ValSplit >= 0 && d.ValSplit < 1, "data.val_split", "must be in [0, 1), got %v", d.ValSplit)
	v.checkPair(!(d.MaskHistory && d.TrainOnInputs), "data.mask_history", "data.train_on_inputs", "mask_history learns only the last answer and train_on_inputs every token: set one")
	v.oneOf(d.Mixing, "data.mixing", mixings)
	// The ranges recipe's checkAugment holds the run to, checked here too
	// so that the error names the line, before the model and data load.
	au := &d.Augment
	v.check(au.Dedup >= 0 && au.Dedup <= 1, "data.augment.dedup", "must be a similarity in [0, 1] (0 = off), got %v", au.Dedup)
	v.check(au.Rephrase >= 0 && au.Rephrase <= 1, "data.augment.rephrase", "must be a probability in [0, 1] (0 = off), got %v", au.Rephrase)
	v.check(au.PromptDropout >= 0 && au.PromptDropout < 1, "data.augment.prompt_dropout", "must be a probability in [0, 1) (0 = off), got %v", au.PromptDropout)
	for i, s := range d.Subjects {
		v.check(s != "", "data.subjects", "entry %d is empty", i)
		v.check(!slices.Contains(d.Subjects[:i], s), "data.subjects", "%q is listed twice", s)
	}
	if d.Mixing == "weights" {
		v.check(len(d.Weights) > 0, "data.weights", "mixing: weights needs a weight per subject")
		sum := 0.0
		for _, s := range slices.Sorted(maps.Keys(d.Weights)) {
			w := d.Weights[s]
			v.check(w >= 0 && finite(w), "data.weights."+s, "must be a finite number >= 0, got %v", w)
			v.check(len(d.Subjects) == 0 || slices.Contains(d.Subjects, s), "data.weights."+s, "subject %q is not in data.subjects", s)
			sum += w
		}
		v.check(len(d.Weights) == 0 || sum > 0, "data.weights", "weights sum to 0")
	} else {
		v.check(len(d.Weights) == 0, "data.weights", "are only used with mixing: weights (mixing is %s)", d.Mixing)
	}

	lo := &t.LoRA
	v.check(lo.R > 0, "training.lora.r", "must be > 0, got %d", lo.R)
	v.check(lo.Alpha > 0 && finite(lo.Alpha), "training.lora.alpha", "must be > 0, got %v", lo.Alpha)
	v.check(lo.Dropout >= 0 && lo.Dropout < 1, "training.lora.dropout", "must be in [0, 1), got %v", lo.Dropout)
	v.check(lo.LoRAPlusLRRatio == 0 || lo.LoRAPlusLRRatio >= 1 && finite(lo.LoRAPlusLRRatio), "training.lora.loraplus_lr_ratio",
		"must be 0 (off) or >= 1 (lora_B learns at optimizer.lr × the ratio; the LoRA+ paper suggests 16), got %v", lo.LoRAPlusLRRatio)
	v.check(len(lo.Targets) > 0, "training.lora.targets", "must name at least one module (or all-linear)")
	for _, s := range lo.Targets {
		v.check(strings.TrimSpace(s) != "", "training.lora.targets", "has an empty module name")
	}
	if lo.InitFrom != "" {
		// The adapter's own config sets its shape: a value here would be
		// dropped, or disagree with the weights.
		for _, key := range []string{"r", "alpha", "targets", "rslora", "dora", "modules_to_save"} {
			v.unused(false, "training.lora."+key, "is set, and training.lora.init_from %s sets the adapter's shape (its adapter_config.json): leave it out", lo.InitFrom)
		}
		v.checkPair(t.Adapters != "per-subject", "training.lora.init_from", "training.adapters", "%s continues one adapter, and training.adapters is per-subject: use shared adapters", lo.InitFrom)
	}

	q := &t.Quantization
	v.oneOf(q.Type, "training.quantization.type", quantTypes)
	// quant/nf4 implements other layouts, but training loads the base with
	// bitsandbytes' defaults only.
	v.check(q.BlockSize == 64, "training.quantization.block_size", "%d is not implemented: training quantizes with block_size 64 (bitsandbytes' default) only", q.BlockSize)
	v.check(q.DoubleQuant, "training.quantization.double_quant", "false is not implemented: training quantizes with double_quant true (bitsandbytes' default) only")

	o := &t.Optimizer
	v.oneOf(o.Name, "training.optimizer.name", optimizers)
	v.check(o.LR > 0 && finite(o.LR), "training.optimizer.lr", "must be > 0, got %v", o.LR)
	v.check(len(o.Betas) == 2, "training.optimizer.betas", "want two values [beta1, beta2], got %d", len(o.Betas))
	if len(o.Betas) == 2 {
		for i, b := range o.Betas {
			v.check(b >= 0 && b < 1, "training.optimizer.betas", "beta%d must be in [0, 1), got %v", i+1, b)
		}
	}
	v.check(o.Eps >= 0 && finite(o.Eps), "training.optimizer.eps", "must be >= 0, got %v", o.Eps)
	v.check(o.WeightDecay >= 0 && finite(o.WeightDecay), "training.optimizer.weight_decay", "must be >= 0, got %v", o.WeightDecay)
	v.check(o.Momentum >= 0 && o.Momentum < 1, "training.optimizer.momentum", "must be in [0, 1), got %v", o.Momentum)
	v.unused(o.Name == "sgd", "training.optimizer.momentum", "%v is SGD's momentum, and optimizer %s does not use it (AdamW's is betas[0]): set optimizer.name: sgd, or leave momentum at its default", o.Momentum, o.Name)
	v.unused(o.Name == "adamw", "training.optimizer.betas", "are AdamW's, and optimizer %s does not use them: set optimizer.name: adamw, or leave betas at their default", o.Name)
	v.unused(o.Name == "adamw", "training.optimizer.eps", "is AdamW's, and optimizer %s does not use it: set optimizer.name: adamw, or leave eps at its default", o.Name)

	v.oneOf(t.Objective, "training.objective", objectives)
	v.check(t.DPO.Beta > 0 && finite(t.DPO.Beta), "training.dpo.beta", "must be > 0, got %v", t.DPO.Beta)
	v.unused(t.Objective == "dpo", "training.dpo.beta", "%v is used by objective dpo only, and the objective is %s: set training.objective: dpo, or leave beta at its default", t.DPO.Beta, t.Objective)
	for _, key := range []string{"training.dpo.loss_type", "training.dpo.loss_weights", "training.dpo.label_smoothing", "training.dpo.simpo_gamma"} {
		v.unused(t.Objective == "dpo", key, "set, but only objective dpo reads it, and the objective is %s: set training.objective: dpo, or leave it out", t.Objective)
	}
	v.dpoLoss(t.DPO)
	v.kto(t)
	v.oneOf(t.Adapters, "training.adapters", adapterSets)
	v.check(t.NEFTuneAlpha >= 0 && finite(t.NEFTuneAlpha), "training.neftune_alpha", "must be >= 0 (0 = off), got %v", t.NEFTuneAlpha)
	s := &t.Schedule
	v.oneOf(s.Name, "training.schedule.name", schedules)
	v.check(s.WarmupSteps >= 0, "training.schedule.warmup_steps", "must be >= 0, got %d", s.WarmupSteps)
	// One rule, by value, wherever the value came from: the default warmup
	// is scaled to a short run (Warmup, with a note); any other warmup is
	// what the user chose, and one longer than the run is refused.
	v.checkPair(t.MaxSteps == 0 || s.WarmupSteps <= t.MaxSteps || !c.Chose("training.schedule.warmup_steps"), "training.schedule.warmup_steps", "training.max_steps",
		"%d warmup steps exceed training.max_steps (%d): lower warmup_steps (the default, %d, is scaled to short runs by itself)", s.WarmupSteps, t.MaxSteps, DefaultWarmupSteps)
	v.schedule(t)

	v.check(t.BatchSize > 0, "training.batch_size", "must be > 0, got %d", t.BatchSize)
	v.check(t.GradAccum >= 1, "training.grad_accum", "must be >= 1, got %d", t.GradAccum)
	v.check(t.MaxSteps >= 0, "training.max_steps", "must be >= 0, got %d", t.MaxSteps)
	v.check(t.MaxEpochs >= 0, "training.max_epochs", "must be >= 0, got %d", t.MaxEpochs)
	// max_steps decides when it is set; 0 epochs is harmless there.
	v.unused(t.MaxSteps == 0 || t.MaxEpochs == 0, "training.max_epochs", "%d epochs are not used: training.max_steps (%d) decides the run's length (set max_steps: 0 to train by epochs)", t.MaxEpochs, t.MaxSteps)
	v.check(t.MaxSteps > 0 || t.MaxEpochs > 0, "training.max_steps", "set max_steps or max_epochs (both are 0)")
	v.check(t.MaxTime >= 0, "training.max_time", "must be >= 0, got %v", t.MaxTime)
	v.check(t.ClipNorm >= 0 && finite(t.ClipNorm), "training.clip_norm", "must be >= 0 (0 = off), got %v", t.ClipNorm)
	v.check(t.SpikeFactor == 0 || t.SpikeFactor > 1, "training.spike_factor", "must be 0 (off) or > 1, got %v", t.SpikeFactor)
	v.check(t.LogEvery >= 1, "training.log_every", "must be >= 1, got %d", t.LogEvery)
	v.check(t.MLPChunkTokens >= 0, "training.mlp_chunk_tokens", "must be >= 0 (0 = the MLP over all tokens at once), got %d", t.MLPChunkTokens)
	v.check(deviceRE.MatchString(t.Device), "training.device", "%q is not auto, cpu, cuda or cuda:N", t.Device)
	v.oneOf(t.Precision, "training.precision", precisions)
	v.oneOf(t.GEMMProvider, "training.gemm_provider", gemmProvs)
	v.checkPair(t.Device != "cpu" || t.GEMMProvider != "cublaslt", "training.gemm_provider", "training.device",
		"cublaslt runs on a CUDA device: the CPU has its own kernels (set gemm_provider auto or ftune, or device cuda)")
	v.oneOf(t.AttentionKernel, "training.attention_kernel", attnKernels)
	v.checkPair(t.Device != "cpu" || t.AttentionKernel != "flash", "training.attention_kernel", "training.device",
		"flash runs on a CUDA device: the CPU has its own attention (set attention_kernel auto or simt, or device cuda)")
	v.checkPair(t.Precision != "f32" || t.AttentionKernel != "flash", "training.attention_kernel", "training.precision",
		"flash computes at bf16 precision on tensor cores, and f32 is the float32 parity path (set precision auto or bf16, or attention_kernel auto or simt)")
	v.check(t.MaxDeviceMemory >= 0 && finite(t.MaxDeviceMemory) && t.MaxDeviceMemory < 1<<20, "training.max_device_memory", "must be GiB >= 0 (0 = no cap), got %v", t.MaxDeviceMemory)
	v.checkPair(t.Device != "cpu" || t.MaxDeviceMemory == 0, "training.max_device_memory", "training.device",
		"the cap is on GPU memory: the CPU run has none to cap (drop it, or set device cuda or auto)")

	e := &t.Eval
	v.check(e.Every >= 0, "training.eval.every", "must be >= 0, got %d", e.Every)
	v.check(e.MaxBatches >= 0, "training.eval.max_batches", "must be >= 0, got %d", e.MaxBatches)
	g := &e.Generation
	v.check(g.Questions >= 0, "training.eval.generation.questions", "must be >= 0, got %d", g.Questions)
	v.check(g.Questions == 0 || g.MaxNewTokens > 0, "training.eval.generation.max_new_tokens", "must be > 0 when questions are asked, got %d", g.MaxNewTokens)
	v.check(g.Samples >= 0, "training.eval.generation.samples", "must be >= 0, got %d", g.Samples)
	// No questions means no samples, whatever samples says; the default
	// number of samples shows at most the questions asked (fewer questions
	// than the default samples is not a conflict the user made).
	v.checkPair(g.Questions <= 0 || g.Samples <= g.Questions || v.cfg.IsDefault("training.eval.generation.samples"), "training.eval.generation.samples", "training.eval.generation.questions",
		"%d samples exceed the %d questions asked", g.Samples, g.Questions)

	hasVal := d.ValSplit > 0
	// Validation during training runs every eval.every steps and at the
	// last step. With max_steps set and eval.every > 0, none runs before
	// the last step when eval.every >= max_steps: what acts on validation
	// (early stopping, top_k's ranking) then has nothing to act on. With
	// eval.every 0 (epoch ends) or max_epochs deciding, that depends on the
	// data, and the run checks it.
	valBeforeEnd := t.MaxSteps == 0 || e.Every == 0 || (t.MaxSteps-1)/e.Every > 0
	noValWhy := fmt.Sprintf("with training.eval.every %d and max_steps %d the only validation during training is at the last step (lower eval.every below max_steps)", e.Every, t.MaxSteps)
	ck := &t.Checkpointing
	v.check(ck.Every >= 0, "training.checkpointing.every", "must be >= 0, got %d", ck.Every)
	v.check(ck.KeepLast >= 0, "training.checkpointing.keep_last", "must be >= 0 (0 = all), got %d", ck.KeepLast)
	v.check(ck.TopK >= 0, "training.checkpointing.top_k", "must be >= 0, got %d", ck.TopK)
	v.checkPair(ck.TopK == 0 || ck.Monitor != "", "training.checkpointing.top_k", "training.checkpointing.monitor", "top_k %d needs training.checkpointing.monitor (e.g. val/loss)", ck.TopK)
	v.unused(ck.TopK == 0 || valBeforeEnd, "training.checkpointing.top_k", "top_k %d keeps the checkpoints %s ranks best, but %s: one checkpoint is ranked", ck.TopK, ck.Monitor, noValWhy)
	v.unused(ck.Monitor != "", "training.checkpointing.mode", "%s ranks checkpoints by training.checkpointing.monitor, which is empty", ck.Mode)
	v.oneOf(ck.Mode, "training.checkpointing.mode", modes)
	v.monitor(ck.Monitor, "training.checkpointing.monitor", hasVal)
	v.preferenceMonitor(t.Objective, ck.Monitor, "training.checkpointing.monitor")

	es := &t.EarlyStopping
	v.oneOf(es.Mode, "training.early_stopping.mode", modes)
	v.check(es.MinDelta >= 0 && finite(es.MinDelta), "training.early_stopping.min_delta", "must be >= 0, got %v", es.MinDelta)
	// Without enabled: true these are not used: refused when changed, as
	// data.weights without mixing: weights.
	for _, k := range []string{"monitor", "mode", "patience", "min_delta"} {
		v.unused(es.Enabled, "training.early_stopping."+k, "is only used with training.early_stopping.enabled: true, which is false")
	}
	if es.Enabled {
		v.check(valBeforeEnd, "training.early_stopping.enabled", "early stopping acts at validation, and %s: it could never stop the run", noValWhy)
		v.check(es.Patience > 0, "training.early_stopping.patience", "must be > 0, got %d", es.Patience)
		v.check(es.Monitor != "", "training.early_stopping.monitor", "early stopping needs a metric to watch (e.g. val/loss)")
		v.monitor(es.Monitor, "training.early_stopping.monitor", hasVal)
		v.preferenceMonitor(t.Objective, es.Monitor, "training.early_stopping.monitor")
	}

	tr := &t.Tracking
	v.check(tr.OutputDir != "", "training.tracking.output_dir", "must not be empty")
	v.check(tr.RunName == "" || runNameRE.MatchString(tr.RunName), "training.tracking.run_name",
		"%q must be a plain folder name (letters, digits, . _ + -)", tr.RunName)

	return v.errs.err()
}

// schedule checks the settings of training.schedule beyond its name and
// warmup_steps: warmup_ratio, and the keys of one or two schedules each,
// refused under the others when changed (the run would not read them).
func (v *validator) schedule(t *TrainingConfig) {
	s, c := &t.Schedule, v.cfg
	const p = "training.schedule."
	v.check(s.WarmupRatio >= 0 && s.WarmupRatio < 1, p+"warmup_ratio", "must be in [0, 1) (0 = warmup_steps decides), got %v", s.WarmupRatio)
	v.checkPair(s.WarmupRatio == 0 || !c.Chose(p+"warmup_steps"), p+"warmup_ratio", p+"warmup_steps",
		"%v and warmup_steps %d both set the warmup: set one of them", s.WarmupRatio, s.WarmupSteps)
	// constant is transformers' get_constant_schedule: no warmup. The
	// default warmup_steps is not the user's; 0 says what constant does.
	v.checkPair(s.Name != "constant" || s.WarmupRatio == 0, p+"warmup_ratio", p+"name",
		"%v sets a warmup, and schedule constant has none: set name constant_with_warmup, or leave warmup_ratio out", s.WarmupRatio)
	v.checkPair(s.Name != "constant" || s.WarmupSteps == 0 || !c.Chose(p+"warmup_steps"), p+"warmup_steps", p+"name",
		"%d sets a warmup, and schedule constant has none: set name constant_with_warmup, or warmup_steps 0", s.WarmupSteps)

	v.check(s.MinLRRate >= 0 && s.MinLRRate < 1, p+"min_lr_rate", "must be a fraction of optimizer.lr in [0, 1), got %v", s.MinLRRate)
	v.checkPair(s.Name != "cosine_with_min_lr" || s.MinLRRate > 0, p+"min_lr_rate", p+"name",
		"cosine_with_min_lr needs min_lr_rate > 0, the floor as a fraction of optimizer.lr (e.g. 0.1; transformers requires it too): with 0 it is the cosine schedule")
	v.check(s.NumCycles >= 1, p+"num_cycles", "must be >= 1, got %d", s.NumCycles)
	v.check(s.Power > 0 && finite(s.Power), p+"power", "must be > 0, got %v", s.Power)
	v.check(s.LREnd >= 0 && finite(s.LREnd), p+"lr_end", "must be >= 0, got %v", s.LREnd)
	// transformers' get_polynomial_decay_schedule_with_warmup refuses
	// the same: the decay goes down from lr to lr_end.
	v.checkPair(s.Name != "polynomial" || s.LREnd < t.Optimizer.LR, p+"lr_end", "training.optimizer.lr",
		"%v must be below training.optimizer.lr (%v): polynomial decays from lr to lr_end", s.LREnd, t.Optimizer.LR)
	v.check(s.DecayRatio > 0 && s.DecayRatio <= 1, p+"decay_ratio", "must be a fraction of the run's steps in (0, 1], got %v", s.DecayRatio)
	v.oneOf(s.DecayType, p+"decay_type", decayTypes)
	if w, _ := c.Warmup(); s.Name == "warmup_stable_decay" && t.MaxSteps > 0 {
		d := pymath.CeilFraction(s.DecayRatio, t.MaxSteps)
		v.check(w+d <= t.MaxSteps, p+"decay_ratio", "%v of training.max_steps %d is %d decay steps, which with %d warmup steps exceed the run: lower decay_ratio or the warmup", s.DecayRatio, t.MaxSteps, d, w)
	}
	for _, k := range []struct {
		key   string
		names []string
	}{
		{"min_lr_rate", []string{"cosine_with_min_lr", "warmup_stable_decay"}},
		{"num_cycles", []string{"cosine_with_restarts"}},
		{"power", []string{"polynomial"}},
		{"lr_end", []string{"polynomial"}},
		{"decay_ratio", []string{"warmup_stable_decay"}},
		{"decay_type", []string{"warmup_stable_decay"}},
	} {
		val, _ := valueAt(reflect.ValueOf(c).Elem(), p+k.key)
		v.unused(slices.Contains(k.names, s.Name), p+k.key, "%v is read by schedule %s only, and training.schedule.name is %s: set that schedule, or leave %s out",
			val, strings.Join(k.names, " and "), s.Name, k.key)
	}
}

// monitor checks a monitored metric. Only validation reports the metrics
// that rank checkpoints and stop early: val/loss, val/perplexity,
// val/token_accuracy, and the same per subject (val/SUBJECT/loss).
func (v *validator) monitor(metric, path string, hasVal bool) {
	if metric == "" {
		return
	}
	parts := strings.Split(metric, "/")
	ok := parts[0] == "val" && (len(parts) == 2 || (len(parts) == 3 && parts[1] != "")) && slices.Contains(valMetrics, parts[len(parts)-1])
	if strings.HasPrefix(metric, "train/") {
		v.check(false, path, "%q is not implemented: checkpoints are ranked and early stopping decided at validation, which reports val/ metrics (e.g. val/loss)", metric)
		return
	}
	v.check(ok, path, "%q is not a validation metric: want val/loss, val/perplexity or val/token_accuracy, or val/SUBJECT/loss etc.", metric)
	off := path + ": \"\""
	if path == "training.checkpointing.monitor" {
		off += " and training.checkpointing.top_k: 0" // top_k ranks by the monitor
	}
	v.checkPair(!ok || hasVal, path, "data.val_split", "%s is computed on validation data, but data.val_split is 0 (set data.val_split > 0, or %s)", metric, off)
}

// DPOLossTypes are training.dpo.loss_type's names (train/dpo's LossTypes,
// which recipe's tests hold them to).
var DPOLossTypes = []string{"sigmoid", "hinge", "ipo", "robust", "sigmoid_norm", "sft", "orpo", "simpo"}

// dpoLoss checks the loss types, their weights and label_smoothing (read
// by robust and simpo alone: refused elsewhere rather than dropped, where
// TRL ignores it) and simpo_gamma (simpo's).
func (v *validator) dpoLoss(d DPOConfig) {
	seen := map[string]bool{}
	for i, t := range d.LossType {
		v.oneOf(t, fmt.Sprintf("training.dpo.loss_type[%d]", i), DPOLossTypes)
		v.check(!seen[t], "training.dpo.loss_type", "names %s twice (give it one weight in loss_weights)", t)
		seen[t] = true
	}
	n := max(len(d.LossType), 1)
	v.check(len(d.LossWeights) == 0 || len(d.LossWeights) == n, "training.dpo.loss_weights", "has %d weights for %d loss types (want one each, or none: 1 each)", len(d.LossWeights), n)
	for _, w := range d.LossWeights {
		v.check(w >= 0 && finite(w), "training.dpo.loss_weights", "must be >= 0 and finite, got %v", w)
	}
	v.check(d.LabelSmoothing >= 0 && d.LabelSmoothing < 0.5, "training.dpo.label_smoothing", "must be in [0, 0.5) (robust divides by 1 - 2 label_smoothing), got %v", d.LabelSmoothing)
	v.check(d.LabelSmoothing == 0 || seen["robust"] || seen["simpo"], "training.dpo.label_smoothing", "%v is read by loss types robust and simpo only, and the loss types are %v: add one, or leave it out", d.LabelSmoothing, lossTypesOrDefault(d.LossType))
	v.check(finite(d.SimPOGamma), "training.dpo.simpo_gamma", "must be finite, got %v", d.SimPOGamma)
	v.unused(seen["simpo"], "training.dpo.simpo_gamma", "%v is read by loss type simpo only, and the loss types are %v: add simpo, or leave it out", d.SimPOGamma, lossTypesOrDefault(d.LossType))
}

func lossTypesOrDefault(types []string) []string {
	if len(types) == 0 {
		return []string{"sigmoid"}
	}
	return types
}

// KTOLossTypes are training.kto.loss_type's names (train/dpo's
// KTOLossTypes, which recipe's tests hold them to).
var KTOLossTypes = []string{"kto", "apo_zero_unpaired"}

// kto checks objective kto's settings: refused under another objective
// when changed, as dpo's are; its weights, not both 0; and a batch of at
// least two examples for loss type kto, whose KL estimate pairs each
// prompt with another example's completion.
func (v *validator) kto(t *TrainingConfig) {
	k := &t.KTO
	v.check(k.Beta > 0 && finite(k.Beta), "training.kto.beta", "must be > 0, got %v", k.Beta)
	v.check(k.DesirableWeight >= 0 && finite(k.DesirableWeight), "training.kto.desirable_weight", "must be >= 0 and finite, got %v", k.DesirableWeight)
	v.check(k.UndesirableWeight >= 0 && finite(k.UndesirableWeight), "training.kto.undesirable_weight", "must be >= 0 and finite, got %v", k.UndesirableWeight)
	v.checkPair(k.DesirableWeight != 0 || k.UndesirableWeight != 0, "training.kto.desirable_weight", "training.kto.undesirable_weight",
		"and undesirable_weight are both 0: the loss would be 0 whatever the model does")
	v.oneOf(k.LossType, "training.kto.loss_type", KTOLossTypes)
	for _, key := range []string{"training.kto.beta", "training.kto.desirable_weight", "training.kto.undesirable_weight", "training.kto.loss_type"} {
		v.unused(t.Objective == "kto", key, "set, but only objective kto reads it, and the objective is %s: set training.objective: kto, or leave it out", t.Objective)
	}
	v.checkPair(t.Objective != "kto" || k.LossType != "kto" || t.BatchSize != 1, "training.batch_size", "training.objective",
		"1 under objective kto: KTO's KL estimate pairs each prompt of a batch with another example's completion, and a batch of one has none (its estimate would be the example's own reward; TRL refuses per_device_train_batch_size 1 alike): raise batch_size, or set training.kto.loss_type apo_zero_unpaired, which needs no estimate")
}

// preferenceMonitor refuses, under objective dpo or kto, a monitored
// metric other than val/loss: their validation is their loss and
// rewards, with no perplexity or token accuracy, and not per subject.
func (v *validator) preferenceMonitor(objective, metric, path string) {
	v.checkPair(objective != "dpo" && objective != "kto" || metric == "" || metric == "val/loss", path, "training.objective",
		"%q is not measured under objective %s: its validation reports val/loss (the %s loss) and the rewards (monitor val/loss)", metric, objective, strings.ToUpper(objective))
}

// notImplemented refuses a documented value the engine does not run
// (saying why), and any other value as not one of the accepted ones.
func (v *validator) notImplemented(val, path string, accepted, documented []string, why string) {
	if slices.Contains(documented, val) {
		v.check(false, path, "%q is not implemented: %s (accepted: %s)", val, why, strings.Join(accepted, ", "))
		return
	}
	v.oneOf(val, path, accepted)
}

// isTemplateFile says a template names a file rather than a built-in.
func IsTemplateFile(s string) bool {
	return strings.HasSuffix(s, ".jinja") || strings.HasSuffix(s, ".j2") || strings.ContainsRune(s, filepath.Separator) || strings.ContainsRune(s, '/')
}
