package config

import (
	"reflect"
	"strings"
)

// synonyms maps the names other trainers use (transformers' TrainingArguments,
// PEFT's LoraConfig, Axolotl) to ours, because edit distance alone cannot
// turn learning_rate into lr.
var synonyms = map[string]string{
	"learning_rate":               "training.optimizer.lr",
	"lora_r":                      "training.lora.r",
	"rank":                        "training.lora.r",
	"lora_alpha":                  "training.lora.alpha",
	"lora_dropout":                "training.lora.dropout",
	"target_modules":              "training.lora.targets",
	"lora_target_modules":         "training.lora.targets",
	"use_rslora":                  "training.lora.rslora",
	"use_dora":                    "training.lora.dora",
	"modules_to_save":             "training.lora.modules_to_save",
	"per_device_train_batch_size": "training.batch_size",
	"micro_batch_size":            "training.batch_size",
	"gradient_accumulation_steps": "training.grad_accum",
	"gradient_accumulation":       "training.grad_accum",
	"max_grad_norm":               "training.clip_norm",
	"num_train_epochs":            "training.max_epochs",
	"num_epochs":                  "training.max_epochs",
	"epochs":                      "training.max_epochs",
	"lr_scheduler_type":           "training.schedule.name",
	"lr_scheduler":                "training.schedule.name", // Axolotl's name for lr_scheduler_type
	"lr_scheduler_kwargs":         "training.schedule",
	"warmup_ratio":                "training.schedule.warmup_ratio",
	"min_lr_ratio":                "training.schedule.min_lr_rate",
	"min_lr_rate":                 "training.schedule.min_lr_rate",
	"cosine_min_lr_ratio":         "training.schedule.min_lr_rate", // Axolotl's: schedule cosine_with_min_lr
	"num_decay_steps":             "training.schedule.decay_ratio",
	"loraplus_lr_ratio":           "training.lora.loraplus_lr_ratio",
	"scheduler":                   "training.schedule",
	"optim":                       "training.optimizer.name",
	"adam_beta1":                  "training.optimizer.betas",
	"adam_beta2":                  "training.optimizer.betas",
	"adam_epsilon":                "training.optimizer.eps",
	"eval_steps":                  "training.eval.every",
	"save_steps":                  "training.checkpointing.every",
	"save_total_limit":            "training.checkpointing.keep_last",
	"metric_for_best_model":       "training.checkpointing.monitor",
	"early_stopping_patience":     "training.early_stopping.patience",
	"logging_steps":               "training.log_every",
	"model_name_or_path":          "model.path",
	"base_model":                  "model.path",
	"max_seq_length":              "data.max_length",
	"sequence_len":                "data.max_length",
	"seq_len":                     "data.max_length",
	"sample_packing":              "data.packing",
	"chat_template":               "data.template",
	"chat_template_path":          "data.template", // TRL's SFTConfig
	"val_set_size":                "data.val_split",
	"validation_split":            "data.val_split",
	"bnb_4bit_quant_type":         "training.quantization.type",
	"bnb_4bit_use_double_quant":   "training.quantization.double_quant",
	"output":                      "training.tracking.output_dir",
	"use_gradient_checkpointing":  "training.gradient_checkpointing",
	"activation_offloading":       "training.offload_checkpoints",
	"offload_activations":         "training.offload_checkpoints",
	"tiled_mlp":                   "training.mlp_chunk_tokens",
	// LLaMA-Factory's names.
	"cutoff_len":          "data.max_length",
	"lora_rank":           "training.lora.r",
	"lora_target":         "training.lora.targets",
	"val_size":            "data.val_split",
	"pref_beta":           "training.dpo.beta",
	"neftune_noise_alpha": "training.neftune_alpha",
	"dataset":             "data.files",
	"datasets":            "data.files", // Axolotl's list of datasets
}

// explained are other trainers' keys whose ftune counterpart needs a word
// more than its path (the value reads otherwise, or is not offered): the
// nearest key by spelling would mislead (load_in_8bit is one letter from
// model.load_in_4bit, and adapter from training.adapters).
var explained = map[string]string{
	"load_in_8bit":          "8-bit base weights are not offered: model.load_in_4bit quantizes them to 4-bit NF4 (QLoRA)",
	"quantization_bit":      "model.load_in_4bit: true quantizes the base to 4-bit NF4, the one quantization offered",
	"adapter":               "Axolotl's adapter: LoRA is always trained (training.lora); qlora is model.load_in_4bit: true",
	"finetuning_type":       "ftune trains LoRA adapters only (training.lora); full fine-tuning is not offered",
	"lora_target_linear":    "training.lora.targets: [all-linear], the default, targets every linear layer",
	"completion_only_loss":  "data.train_on_inputs: false, the default, learns only the completions",
	"assistant_only_loss":   "data.train_on_inputs: false, the default, learns only the assistant turns",
	"bf16":                  "training.precision: bf16 (auto, the default, is bf16 on a GPU and f32 on a CPU without bf16 products)",
	"fp16":                  "training.precision: bf16 or f32 (fp16 is not offered; auto is bf16 on a GPU)",
	"flash_attention":       "training.attention_kernel: flash (auto, the default, takes it where it applies)",
	"sdp_attention":         "training.attention_kernel (auto, the default, picks the kernel)",
	"stage":                 "training.objective: sft, dpo or kto (LLaMA-Factory's stage)",
	"rl":                    "training.objective: dpo or kto (Axolotl's rl)",
	"deepspeed":             "multi-GPU sharding is not offered: ftune trains on one GPU, or with data-parallel workers (ftune train --nproc-per-node)",
	"fsdp":                  "multi-GPU sharding is not offered: ftune trains on one GPU, or with data-parallel workers (ftune train --nproc-per-node)",
	"fsdp_config":           "multi-GPU sharding is not offered: ftune trains on one GPU, or with data-parallel workers (ftune train --nproc-per-node)",
	"wandb_project":         "ftune writes TensorBoard event files (training.tracking.tensorboard): wandb sync the run's tensorboard folder",
	"report_to":             "ftune writes TensorBoard event files (training.tracking.tensorboard): wandb sync the run's tensorboard folder",
	"dataset_prepared_path": "Axolotl's tokenized copy of the data; ftune keeps its own in data.token_cache",
	"evals_per_epoch":       "training.eval.every counts steps (0: at the end of each epoch)",
	"saves_per_epoch":       "training.checkpointing.every counts steps",
	"pad_to_sequence_len":   "ftune pads a batch to its longest row, or packs rows (data.packing): padding changes no loss",
	"chat_template_jinja":   "data.template takes a .jinja file: write the template into one and name it there",
	"special_tokens":        "ftune uses the tokenizer's special tokens as the model folder gives them",
	// Axolotl's names of a dataset's fields.
	"field_instruction":         "data.columns: {instruction: FIELD, input: FIELD, output: FIELD} with data.shape: alpaca names the records' fields (Axolotl's field_instruction, field_input, field_output)",
	"field_input":               "data.columns: {instruction: FIELD, input: FIELD, output: FIELD} with data.shape: alpaca names the records' fields (Axolotl's field_instruction, field_input, field_output)",
	"field_output":              "data.columns: {instruction: FIELD, input: FIELD, output: FIELD} with data.shape: alpaca names the records' fields (Axolotl's field_instruction, field_input, field_output)",
	"field_messages":            "data.columns: {messages: FIELD, role: FIELD, content: FIELD} with data.shape: chat names the records' fields (Axolotl's field_messages, message_property_mappings)",
	"message_property_mappings": "data.columns: {messages: FIELD, role: FIELD, content: FIELD} with data.shape: chat names the records' fields (Axolotl's field_messages, message_property_mappings)",
	"message_field_role":        "data.columns: {messages: FIELD, role: FIELD, content: FIELD} with data.shape: chat names the records' fields (Axolotl's field_messages, message_property_mappings)",
	"message_field_content":     "data.columns: {messages: FIELD, role: FIELD, content: FIELD} with data.shape: chat names the records' fields (Axolotl's field_messages, message_property_mappings)",
}

// levenshtein is the edit distance counting insertions, deletions,
// substitutions and swaps of neighbours (optimal string alignment), since
// "modle" for "model" is one slip, not two.
func levenshtein(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// allPaths lists every key path of RunConfig, sections included, in field
// order (so ties in suggestions go to the earlier, more common key).
var allPaths = func() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			p := join(prefix, name)
			out = append(out, p)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
				walk(f.Type, p)
			}
		}
	}
	walk(reflect.TypeOf(RunConfig{}), "")
	return out
}()

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func lastElem(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}

func parentOf(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// suggest proposes a replacement for the unknown key under section
// (a dotted path, "" for the top level) whose valid keys are candidates.
// It returns "" when nothing is close. A key that belongs to another
// section is proposed with its full path.
func suggest(key, section string, candidates []string) string {
	lower := strings.ToLower(key)
	show := func(target string) string {
		if parentOf(target) == section {
			return lastElem(target)
		}
		return target
	}
	if target, ok := synonyms[lower]; ok {
		return show(target)
	}
	// A near miss among the keys of this section.
	// One edit per three letters, at least one: "lrr" -> "lr", but "ab"
	// proposes nothing rather than any two-letter key.
	best, bestD := "", max(1, len(lower)/3)+1
	for _, c := range candidates {
		if d := levenshtein(lower, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return best
	}
	// A shortened key: batch -> batch_size, grad -> grad_accum.
	if len(lower) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(c, lower) {
				return c
			}
		}
	}
	// The key exists (or nearly) in another section: training.lr is
	// training.optimizer.lr. Prefer an exact name, then one edit away;
	// prefer paths below the current section.
	for _, maxD := range []int{0, 1} {
		var found string
		for _, p := range allPaths {
			if levenshtein(lower, lastElem(p)) > maxD || p == join(section, key) {
				continue
			}
			if found == "" || (strings.HasPrefix(p, section+".") && !strings.HasPrefix(found, section+".")) {
				found = p
			}
		}
		if found != "" && (maxD == 0 || len(lower) > 3) {
			return show(found)
		}
	}
	return ""
}

// unknownKeyHint is what an unknown key's error adds: an explanation for
// another trainer's key that needs one, else the nearest ftune key.
func unknownKeyHint(key, section string, candidates []string) string {
	if text, ok := explained[strings.ToLower(key)]; ok {
		return "; " + text
	}
	return didYouMean(suggest(key, section, candidates))
}

func didYouMean(s string) string {
	if s == "" {
		return ""
	}
	return "; did you mean `" + s + "`?"
}
