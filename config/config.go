package config

import (
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ftune/ftune/internal/pymath"
)

// RunConfig is one run file: what to train, on what, and how.
//
// Field tags: `yaml` is the key in the file (and in --set paths), `doc` is
// the comment `ftune init` writes above it, and `path:"1"` marks strings in
// which a leading ~ and environment variables are expanded (ExpandPath).
type RunConfig struct {
	Model    ModelConfig    `yaml:"model" doc:"The base model."`
	Data     DataConfig     `yaml:"data" doc:"Training data: subject datasets or files."`
	Training TrainingConfig `yaml:"training" doc:"The optimisation, evaluation, checkpoints and run tracking."`

	// src maps a dotted key path to where its value came from, so that
	// validation errors can point at the line to edit.
	src map[string]string
	// written holds the paths whose source is a file ftune wrote (`ftune
	// init`'s, a run's config.yaml): a value there equal to the default is
	// the default printed, not the user's choice (Chose).
	written map[string]bool
	// file is the run file's name, "" for a config built in code.
	file string
	// notices: see Notices.
	notices []string
}

// ModelConfig names the base model.
type ModelConfig struct {
	Path       string `yaml:"path" path:"1" doc:"Hugging Face model folder, or \"tiny-base\" for the embedded test model."`
	DType      string `yaml:"dtype" doc:"Storage type of the frozen weights: auto (as the checkpoint stores them) or bf16 (checked: the checkpoint must store bf16; converting is not implemented)."`
	LoadIn4Bit bool   `yaml:"load_in_4bit" doc:"Quantize the frozen base weights to NF4 at load (QLoRA); see training.quantization."`
}

// DataConfig says where the examples come from and how they become rows.
type DataConfig struct {
	Root          string             `yaml:"root" path:"1" doc:"Subject data root: one file or folder per subject. Empty = the bundled subject datasets."`
	Files         []string           `yaml:"files" path:"1" doc:"Data files to use instead of a subject root: paths, folders or globs, as a list [a.jsonl, b.jsonl], read together as one subject, \"data\" (one file alone is named after it: my.jsonl is my); data.subjects keeps the files it names, each by its name less the extension. A file name may hold a comma, so an unquoted a.jsonl,b.jsonl is refused as ambiguous (write [a.jsonl, b.jsonl], or [\"a,b.jsonl\"] for one file)."`
	Format        string             `yaml:"format" doc:"Format of data.files: auto (by extension), jsonl, json, csv, tsv, parquet or text (a subject root needs auto)."`
	Shape         string             `yaml:"shape" doc:"Record layout of data.files: auto, alpaca, chat, sharegpt, completion, input_output, preference (prompt, chosen, rejected: for training.objective dpo) or unpaired_preference (prompt, completion, label true or false: for training.objective kto) (a subject root needs auto)."`
	Columns       map[string]string  `yaml:"columns" doc:"The record fields that hold a shape's columns in data.files, when they are named otherwise (LLaMA-Factory's dataset_info.json columns, Axolotl's field_instruction or message_property_mappings), as a subject folder's subject.yaml columns: e.g. {instruction: question, input: context, output: answer} with shape alpaca, {messages: dialog, role: speaker, content: text} with chat. Needs data.shape; one mapping covers every file of data.files (a Hugging Face dataset folder's splits too). Keys: those data.shape reads: instruction, input, output (alpaca); messages, role, content (chat, sharegpt); text (completion); prompt, response (input_output); prompt, chosen, rejected (preference); prompt, completion, label (unpaired_preference); and system, tools; another is refused naming it."`
	Template      string             `yaml:"template" path:"1" doc:"Chat template: auto (the model's), a built-in (chatml, llama3, llama2, mistral, gemma, phi3, phi4, alpaca), a .jinja file, or none: no template, text prompt/completion pairs joined as plain text as TRL's SFTTrainer reads its standard (non-conversational) records (the completion learnt, with EOS; train_on_inputs learns the prompt too), plain text as always; conversations, alpaca records included, are refused, since only a template writes their roles (data.template alpaca renders alpaca records as the Stanford Alpaca prompt)."`
	Thinking      string             `yaml:"enable_thinking" doc:"enable_thinking passed to the chat template: auto (not passed: the template's default), true or false. Only for templates that read it (Qwen3's); false puts an empty <think> block in the generation prompt, which is then not learnt."`
	TextUnit      string             `yaml:"text_unit" doc:"How a plain-text file (.txt, .md) is cut into examples: auto (a line each for .txt, the whole file for Markdown), line, paragraph (separated by blank lines) or file (the whole file)."`
	MaxLength     int                `yaml:"max_length" doc:"Tokens per row; longer conversations and prompt/answer examples are truncated, longer plain text as data.long_text says. At most the model's max_position_embeddings (see allow_longer_than_model)."`
	LongText      string             `yaml:"long_text" doc:"Plain-text examples longer than max_length: split (into pieces of max_length tokens, each trained on, as continued pretraining cuts a corpus into blocks) or truncate (only the first max_length tokens are trained on)."`
	TokenCache    string             `yaml:"token_cache" path:"1" doc:"Folder of token caches (what ftune data prepare --out writes): the data is tokenized into it once and read from it by later runs, resumes, evaluations and data-parallel workers, rebuilt when the data, tokenizer, template or options change. Empty: tokenize on every run."`
	SkipBad       bool               `yaml:"skip_bad" doc:"Skip malformed records (bad JSON or CSV, a missing column, invalid UTF-8) instead of failing: each file's count of skipped records and the first reasons are printed. Off: the first one stops the run, naming its file and line."`
	AllowLonger   bool               `yaml:"allow_longer_than_model" doc:"Allow max_length above the model's max_position_embeddings: the model never saw those positions, so quality past them is unknown (RoPE extrapolates poorly), and memory grows with the length."`
	Packing       bool               `yaml:"packing" doc:"Pack several short examples into one row (attention kept within each)."`
	TrainOnInputs bool               `yaml:"train_on_inputs" doc:"Put the loss on prompt tokens too, not only on the assistant's answers."`
	MaskHistory   bool               `yaml:"mask_history" doc:"Learn only each conversation's last assistant answer; the earlier answers stay as context (LLaMA-Factory's mask_history). A message's \"weight\": 0 still leaves a last answer out. Not with train_on_inputs."`
	ValSplit      float64            `yaml:"val_split" doc:"Fraction of each subject held out for validation, in [0, 1)."`
	Seed          uint64             `yaml:"seed" doc:"Seed of the train/validation split and of shuffling."`
	Subjects      []string           `yaml:"subjects" doc:"Subjects to train on; empty = every subject found. a,b is the list [a, b], as --subjects reads it (a name holding a comma is written quoted: [\"a,b\"])."`
	Mixing        string             `yaml:"mixing" doc:"How subjects are mixed: proportional (to their size), uniform, or weights."`
	Weights       map[string]float64 `yaml:"weights" doc:"Sampling weight per subject when mixing is weights."`
	Augment       AugmentConfig      `yaml:"augment" doc:"Augmentations of the training examples (never of validation or test); each is off at 0."`
}

// AugmentConfig turns on augmentations of the training data.
type AugmentConfig struct {
	Dedup         float64 `yaml:"dedup" doc:"Drop near-duplicate training examples at this Jaccard similarity of their 3-word shingles (e.g. 0.8), before the validation share is held out; 0 = off."`
	Rephrase      float64 `yaml:"rephrase" doc:"Probability of rewriting a training instruction with another phrasing of its group (the phrasings: of the subject's subject.yaml); 0 = off."`
	PromptDropout float64 `yaml:"prompt_dropout" doc:"Probability of replacing each prompt token (never an answer token or a special token such as the template's turn markers) by the pad token, drawn anew every epoch; 0 = off."`
}

// TrainingConfig is the optimisation and everything around it.
type TrainingConfig struct {
	Objective             string              `yaml:"objective" doc:"What the adapter learns: sft (the examples' answers, supervised fine-tuning), dpo (preferences: Direct Preference Optimization with TRL's sigmoid loss, or another of dpo.loss_type (IPO, ORPO, SimPO...), on records of a prompt with a chosen and a rejected completion, prompt/chosen/rejected as text or as messages; the reference model is the base with the adapter turned off, as TRL with a PEFT model) or kto (unpaired feedback: TRL's KTOTrainer on records of a prompt with one completion labelled desirable or not, prompt/completion/label; preference pairs are unpaired into a desirable and an undesirable example; the same reference). dpo and kto refuse per-subject adapters, lm_head in modules_to_save, train_on_inputs, data.augment, neftune_alpha, mixing other than proportional and several workers that would split each micro-batch's rows (grad_accum not a multiple of the workers), each with the reason; their records are not packed, and their evaluation is their loss and rewards on the validation records (val/loss, val/rewards/chosen, val/rewards/margins...), not perplexity or questions."`
	DPO                   DPOConfig           `yaml:"dpo" doc:"Settings of objective dpo."`
	KTO                   KTOConfig           `yaml:"kto" doc:"Settings of objective kto."`
	LoRA                  LoRAConfig          `yaml:"lora" doc:"The LoRA adapter."`
	Adapters              string              `yaml:"adapters" doc:"shared (one adapter for every subject) or per-subject (one adapter per subject, trained in the same pass by routing each row)."`
	Quantization          QuantizationConfig  `yaml:"quantization" doc:"NF4 settings, used when model.load_in_4bit is true."`
	Optimizer             OptimizerConfig     `yaml:"optimizer" doc:"The optimizer."`
	Schedule              ScheduleConfig      `yaml:"schedule" doc:"The learning-rate schedule (a multiplier of optimizer.lr)."`
	BatchSize             int                 `yaml:"batch_size" doc:"Rows per micro-batch."`
	GradAccum             int                 `yaml:"grad_accum" doc:"Micro-batches per optimizer step. The step's loss and gradient are one batch's of all their rows: each micro-batch weighs by its share of the step's labelled tokens (DPO: of its pairs; KTO: of its examples), as transformers' Trainer does since 4.46, not as a mean of micro-batch means."`
	MaxSteps              int                 `yaml:"max_steps" doc:"Optimizer steps; 0 = max_epochs decides."`
	MaxEpochs             int                 `yaml:"max_epochs" doc:"Passes over the training data when max_steps is 0."`
	MaxTime               Duration            `yaml:"max_time" doc:"Stop (with a checkpoint) after this long, e.g. 30m; 0 = no limit."`
	ClipNorm              float64             `yaml:"clip_norm" doc:"Global gradient-norm limit; 0 = no clipping."`
	GradientCheckpointing bool                `yaml:"gradient_checkpointing" doc:"Recompute decoder blocks in the backward pass: less memory, about a third more compute."`
	OffloadCheckpoints    bool                `yaml:"offload_checkpoints" doc:"With gradient_checkpointing on a GPU: hold each decoder block's saved input (batch·seq·hidden values a block, in the activations' dtype) in pinned host memory from the forward to the backward instead of device memory, copied back as the backward reaches the block (the first block's input too, unless modules_to_save trains the embeddings). Bit for bit the same step, for host RAM and two copies of each input over PCIe per step, run on a copy stream beside the compute (the input the backward needs next is copied back ahead: two inputs on the device at a time). For the longest sequences under a memory cap. The memory plan checks the RAM this pins (at most 80% of what is available; pinned pages cannot be swapped). Refused without gradient_checkpointing and with --device cpu (its memory is host memory already); under device auto without a GPU it is said not to apply."`
	MLPChunkTokens        int                 `yaml:"mlp_chunk_tokens" doc:"Run each decoder block's MLP over chunks of this many tokens (0 = all at once), each chunk computed again by its own backward: a step holds the MLP's intermediate_size-wide tensors (the largest at long sequences) for one chunk instead of every token, with or without gradient_checkpointing, for one more forward of the MLP per step. The same outputs; gradients summed chunk by chunk (float32 rounding). Counted on Llama-3-8B's widths: 0.46 -> 0.20 MiB a token at the step's peak in float32 with checkpoints offloaded. Refused with per-subject adapters (they route whole batch rows)."`
	NEFTuneAlpha          float64             `yaml:"neftune_alpha" doc:"NEFTune: uniform noise of scale alpha/sqrt(seq·dim) on input embeddings during training (5-15 in the paper); 0 = off."`
	SpikeFactor           float64             `yaml:"spike_factor" doc:"Skip a step whose loss exceeds this multiple of the running mean; 0 = only skip NaN/Inf."`
	LogEvery              int                 `yaml:"log_every" doc:"Log training metrics every N steps; a record's train/loss is the mean over the N steps since the previous one, as transformers' logging_steps (the learning rate, gradient norm and throughput are the step's)."`
	Eval                  EvalConfig          `yaml:"eval" doc:"Validation during training."`
	Checkpointing         CheckpointConfig    `yaml:"checkpointing" doc:"Checkpoints (they resume exactly)."`
	EarlyStopping         EarlyStoppingConfig `yaml:"early_stopping" doc:"Stop when a validation metric stops improving."`
	Tracking              TrackingConfig      `yaml:"tracking" doc:"Where the run folder goes and what it holds."`
	Seed                  uint64              `yaml:"seed" doc:"Seed of LoRA initialisation and dropout."`
	IgnoreMemoryEstimate  bool                `yaml:"ignore_memory_estimate" doc:"Train even when the estimated peak memory (printed before training) exceeds what the machine has available: the risk is swapping or the out-of-memory killer."`
	Device                string              `yaml:"device" doc:"auto (a CUDA GPU when found, else the CPU), cpu, cuda or cuda:N."`
	Precision             string              `yaml:"precision" doc:"Matrix products: auto (bf16 tensor cores on a CUDA GPU, float32 on the CPU), bf16 (on a GPU the tensor cores; on the CPU products of bf16-rounded operands summed in float32 on AVX512_BF16 or arm64's BF16, 1.2-1.7x float32's speed on a Zen 5, activations staying float32; refused on a CPU without those instructions) or f32 (the float32 parity path)."`
	MaxDeviceMemory       float64             `yaml:"max_device_memory" doc:"Cap on the GPU memory the run may reserve, in GiB (0 = none). The run plans for it before step 1 (turning on gradient_checkpointing, then offload_checkpoints, then mlp_chunk_tokens 4096, as far as the plan needs to fit, and saying so; refusing with the arithmetic when nothing does), and an allocation past it fails with an out-of-memory error naming the cap and the tensor's shape."`
	AttentionKernel       string              `yaml:"attention_kernel" doc:"Which GPU attention kernels run: auto (in bf16 precision the flash kernels for the head sizes they take; ftune's SIMT kernels for other head sizes, for soft-capped scores (Gemma 2: the flash kernels' bf16 error on deep soft-capped models is not explained yet) and in precision f32), flash (tensor-core flash attention: bf16 operands, float32 softmax, every mask, head sizes that are multiples of 16 up to 128, and 256; another head size is refused with the reason, and so are precision f32 and the CPU) or simt (the SIMT kernels for every shape). The CPU ignores auto and simt."`
	GEMMProvider          string              `yaml:"gemm_provider" doc:"Who computes the GPU's matrix products: auto (per product shape, whichever of ftune's own kernels and NVIDIA's cuBLASLt measured faster on its first run, timed once with device events; ftune's kernels when cuBLASLt is not installed, said once in the log; the float32 precision stays on ftune's kernel), ftune, or cublaslt (refused when the library is missing; FTUNE_CUBLASLT_LIBRARY names the file). cuBLASLt is opened at run time: libcublasLt.so.13 or .12 from the system loader, /usr/local/cuda, or the nvidia/cu13/lib or nvidia/cublas/lib folder of a Python's site-packages (pip's NVIDIA wheels, which PyTorch installs). The CPU ignores auto and refuses cublaslt."`
}

// DPOConfig is Direct Preference Optimization (TRL's DPOConfig names).
type DPOConfig struct {
	Beta float64 `yaml:"beta" doc:"beta: how strongly the policy is held to the reference (higher: closer); TRL's default 0.1. Under ipo it is IPO's tau."`
	// LossType is TRL's loss_type: one name or a list, summed with
	// LossWeights (TRL's loss_weights).
	LossType       []string  `yaml:"loss_type" doc:"The preference loss, TRL's loss_type: sigmoid (DPO's, the default), hinge (RSO's max(0, 1 - z)), ipo (IPO's squared loss on per-token log-ratios, TRL's normalisation), robust (robust DPO for noisy labels: label_smoothing is the share of flipped labels), sigmoid_norm (sigmoid on per-token log-ratios), sft (the chosen completions' next-token loss), or without a reference model (one forward fewer per micro-batch) orpo (ORPO, TRL's ORPOTrainer: sft minus beta log sigmoid of the completions' log odds ratio) or simpo (SimPO, TRL's CPOTrainer: sigmoid loss on beta times the difference of mean token log-likelihoods minus simpo_gamma); or a list of them summed with loss_weights ([sigmoid, sft] is RPO, TRL's replacement of rpo_alpha). z is beta times the difference of the chosen and the rejected completions' log-ratios to the reference."`
	LossWeights    []float64 `yaml:"loss_weights" doc:"The weight of each loss_type entry (TRL's loss_weights); empty: 1 each."`
	LabelSmoothing float64   `yaml:"label_smoothing" doc:"The assumed share of pairs whose preference is flipped, in [0, 0.5), read by loss types robust and simpo (TRL's label_smoothing); refused with the others, which do not read it."`
	SimPOGamma     float64   `yaml:"simpo_gamma" doc:"Loss simpo's target reward margin gamma (TRL's simpo_gamma); refused with the other loss types."`
}

// KTOConfig is Kahneman-Tversky Optimization on unpaired feedback (TRL's
// KTOConfig names).
type KTOConfig struct {
	Beta              float64 `yaml:"beta" doc:"beta: how strongly the policy is held to the reference (higher: closer); TRL's default 0.1."`
	DesirableWeight   float64 `yaml:"desirable_weight" doc:"The weight of the desirable examples' losses (TRL's desirable_weight), >= 0: to balance unequal numbers of desirable and undesirable examples (the run suggests a range when they differ, from the KTO paper's eq. 8, as TRL does)."`
	UndesirableWeight float64 `yaml:"undesirable_weight" doc:"The weight of the undesirable examples' losses (TRL's undesirable_weight), >= 0; not both weights 0."`
	LossType          string  `yaml:"loss_type" doc:"kto (KTO's loss against the batch's KL estimate from mismatched prompts and completions: needs batch_size >= 2) or apo_zero_unpaired (APO-zero, unpaired: no KL estimate), TRL's loss_type."`
}

// LoRAConfig is the adapter's shape (PEFT's LoraConfig names in brackets).
type LoRAConfig struct {
	R       int      `yaml:"r" doc:"Rank [r]."`
	Alpha   float64  `yaml:"alpha" doc:"Scaling numerator [lora_alpha]: the update is scaled by alpha/r (alpha/sqrt(r) with rslora)."`
	Dropout float64  `yaml:"dropout" doc:"Dropout on the adapter input [lora_dropout], in [0, 1)."`
	Targets []string `yaml:"targets" doc:"Module names to adapt [target_modules], or [all-linear]. q_proj,v_proj is the list [q_proj, v_proj] (module names hold no comma)."`
	RSLoRA  bool     `yaml:"rslora" doc:"Rank-stabilised scaling [use_rslora]."`
	DoRA    bool     `yaml:"dora" doc:"Weight-decomposed LoRA [use_dora]: a trainable magnitude per output feature rescales W + s·B·A, as PEFT computes it. Measured on tiny-base (CPU): 1.2-1.6x the time of a LoRA step without dropout, 2.0-2.3x with dropout (PEFT then runs the base weights on the dropped-out input as well; bench/results/cpu-dora-2026-12-06.md). The GGUF adapter export refuses it (llama.cpp has no DoRA); the merged exports hold it."`
	// LoRAPlusLRRatio is LoRA+'s ratio of lora_B's learning rate to lora_A's.
	LoRAPlusLRRatio float64 `yaml:"loraplus_lr_ratio" doc:"LoRA+ (loraplus_lr_ratio of PEFT's create_loraplus_optimizer, Axolotl and LLaMA-Factory): lora_B trains at optimizer.lr × this ratio, lora_A at optimizer.lr, the schedule scaling both; as PEFT's create_loraplus_optimizer groups them, every one-dimensional parameter (DoRA's magnitudes, the biases of modules_to_save copies) trains at the ratio too, the copies' weight matrices at optimizer.lr. 0 = off; else >= 1 (the LoRA+ paper suggests 16)."`
	// ModulesToSave are modules trained in full beside the adapter.
	ModulesToSave []string `yaml:"modules_to_save" doc:"Modules trained in full beside the adapter [modules_to_save], e.g. [embed_tokens, lm_head] (or embed_tokens,lm_head) after adding tokens: trainable copies saved in the adapter file under PEFT's names. The embedding table and linear layers only, not with per-subject adapters. On a model with tied embeddings each listed end gets its own copy (PEFT's default), and the merged export is untied."`
	// InitFrom continues an existing adapter instead of creating one.
	InitFrom string `yaml:"init_from" path:"1" doc:"A PEFT adapter folder (an earlier run's RUN/adapter, or one from the Hub) to train on from where it is instead of a new adapter: its adapter_config.json sets the adapter's shape (r, alpha, targets, rslora, dora, modules_to_save: leave those keys out), its weights the start, and this run's lora.dropout and seed its dropout. Under objective dpo or kto it is also the reference, kept frozen (TRL with a PEFT model that already has an adapter: the ref copy), so preference training after supervised training starts from, and is held to, the supervised adapter. Its base must be the run's model (the fingerprint it records). Shared adapters only. A resume checks that it has not changed."`
}

// QuantizationConfig is the NF4 storage of the frozen base.
type QuantizationConfig struct {
	Type        string `yaml:"type" doc:"Quantization type; nf4 is the one supported."`
	BlockSize   int    `yaml:"block_size" doc:"Values per absmax block: 64 (bitsandbytes' default; other sizes are not wired into training)."`
	DoubleQuant bool   `yaml:"double_quant" doc:"Quantize the absmax values too (8-bit, blocks of 256), saving about 0.4 bits per weight; true is the one supported."`
}

// OptimizerConfig holds the optimizer's hyper-parameters.
type OptimizerConfig struct {
	Name        string    `yaml:"name" doc:"adamw or sgd."`
	LR          float64   `yaml:"lr" doc:"Peak learning rate."`
	Betas       []float64 `yaml:"betas" doc:"AdamW's (beta1, beta2)."`
	Eps         float64   `yaml:"eps" doc:"AdamW's epsilon."`
	WeightDecay float64   `yaml:"weight_decay" doc:"Decoupled (AdamW) or L2 (SGD) weight decay."`
	Momentum    float64   `yaml:"momentum" doc:"SGD momentum."`
}

// ScheduleConfig is the learning-rate schedule. The keys after
// warmup_ratio belong to one or two schedules each (transformers'
// lr_scheduler_kwargs): changed from their defaults under another
// schedule, they are refused.
type ScheduleConfig struct {
	Name        string  `yaml:"name" doc:"constant, constant_with_warmup, linear, cosine, cosine_with_min_lr, cosine_with_restarts, polynomial or warmup_stable_decay: transformers' lr_scheduler_type names, computed as transformers computes them (the rate of each step a multiple of optimizer.lr)."`
	WarmupSteps int     `yaml:"warmup_steps" doc:"Steps of linear warmup from 0 (warmup_stable_decay's from min_lr_rate); constant has none."`
	WarmupRatio float64 `yaml:"warmup_ratio" doc:"The warmup as a fraction of the run's steps, in [0, 1): ceil(ratio × steps), as transformers' warmup_ratio; under max_epochs, of the steps the data makes (the run prints the warmup it uses). 0 = warmup_steps decides; set one or the other."`
	MinLRRate   float64 `yaml:"min_lr_rate" doc:"The rate's floor as a fraction of optimizer.lr, in [0, 1): cosine_with_min_lr decays to it (required there, as transformers requires min_lr_rate; 0.1 is common), warmup_stable_decay warms up from it and decays to it (transformers' min_lr_ratio, 0 by default)."`
	NumCycles   int     `yaml:"num_cycles" doc:"cosine_with_restarts: the number of cosine cycles over the steps after the warmup, each from optimizer.lr down to 0 and then restarting at it (hard restarts)."`
	Power       float64 `yaml:"power" doc:"polynomial: the exponent of the decay from optimizer.lr to lr_end (1 = linear)."`
	LREnd       float64 `yaml:"lr_end" doc:"polynomial: the learning rate the decay ends at, reached after the last step, below optimizer.lr (an absolute rate, as transformers' lr_end)."`
	DecayRatio  float64 `yaml:"decay_ratio" doc:"warmup_stable_decay: the fraction of the run's steps spent decaying, at its end, in (0, 1]: ceil(ratio × steps) (transformers' num_decay_steps); the rate stays at optimizer.lr between the warmup and the decay."`
	DecayType   string  `yaml:"decay_type" doc:"warmup_stable_decay: the shape of the decay: cosine, linear or 1-sqrt."`
}

// EvalConfig is validation during training.
type EvalConfig struct {
	Every      int              `yaml:"every" doc:"Validate every N steps; 0 = at the end of each epoch."`
	MaxBatches int              `yaml:"max_batches" doc:"Cap on validation batches: at most this many, spread evenly over the held-out set (the first, then every n/max-th), so that each validation (before and after training, every eval.every steps) costs a bounded time on large data; 0 = all. The default, 64, is 512 rows at batch size 8: the bundled subjects' validation (15 batches) runs whole."`
	Generation GenerationConfig `yaml:"generation" doc:"Generation-based evaluation on held-out questions."`
}

// GenerationConfig is the question-answering evaluation.
type GenerationConfig struct {
	Questions    int `yaml:"questions" doc:"Held-out questions answered before and after training (exact match, contains); 0 = off."`
	MaxNewTokens int `yaml:"max_new_tokens" doc:"Tokens generated per answer."`
	Samples      int `yaml:"samples" doc:"Answers logged as text samples to the run (none when questions is 0)."`
}

// CheckpointConfig is when checkpoints are written and which are kept.
type CheckpointConfig struct {
	Every    int    `yaml:"every" doc:"Write a checkpoint every N steps (and at the end); 0 = only at the end."`
	KeepLast int    `yaml:"keep_last" doc:"Most recent checkpoints kept; 0 = all."`
	Monitor  string `yaml:"monitor" doc:"Validation metric ranking checkpoints: val/loss, val/perplexity, val/token_accuracy (or val/SUBJECT/loss ...); empty = none."`
	Mode     string `yaml:"mode" doc:"min or max: whether a lower or higher monitor value is better."`
	TopK     int    `yaml:"top_k" doc:"Best checkpoints by monitor kept besides the last ones; needs monitor."`
}

// EarlyStoppingConfig stops training when a metric stops improving.
type EarlyStoppingConfig struct {
	Enabled  bool    `yaml:"enabled" doc:"Turn early stopping on."`
	Monitor  string  `yaml:"monitor" doc:"Validation metric watched (as checkpointing.monitor)."`
	Mode     string  `yaml:"mode" doc:"min or max."`
	Patience int     `yaml:"patience" doc:"Validations without improvement before stopping."`
	MinDelta float64 `yaml:"min_delta" doc:"Smallest change that counts as an improvement."`
}

// TrackingConfig is the run folder.
type TrackingConfig struct {
	OutputDir   string `yaml:"output_dir" path:"1" doc:"Folder holding one subfolder per run."`
	RunName     string `yaml:"run_name" doc:"Name of this run's folder; empty = the date and time it started (20261207-071530, with -2, -3... when taken)."`
	TensorBoard bool   `yaml:"tensorboard" doc:"Write TensorBoard event files (W&B users: wandb sync the run's tensorboard folder)."`
}

// Duration is a time.Duration written as "30m", "1h30m" or 0 in YAML.
type Duration time.Duration

// String is the YAML form ("0s" for none).
func (d Duration) String() string { return time.Duration(d).String() }

// Default returns the configuration `ftune train` uses with no run file:
// LoRA on the embedded tiny-base over the bundled subject datasets, on the
// CPU unless a GPU is found.
func Default() *RunConfig {
	return &RunConfig{
		Model: ModelConfig{Path: "tiny-base", DType: "auto"},
		Data: DataConfig{
			Format:    "auto",
			Shape:     "auto",
			Template:  "auto",
			Thinking:  "auto",
			TextUnit:  "auto",
			MaxLength: 256,
			LongText:  "split",
			Packing:   true,
			ValSplit:  0.1,
			Seed:      42,
			Mixing:    "proportional",
		},
		Training: TrainingConfig{
			LoRA: LoRAConfig{
				R: 16, Alpha: 32, Dropout: 0.05,
				Targets: []string{"all-linear"},
			},
			Objective:    "sft",
			DPO:          DPOConfig{Beta: 0.1, SimPOGamma: 0.5},
			KTO:          KTOConfig{Beta: 0.1, DesirableWeight: 1, UndesirableWeight: 1, LossType: "kto"},
			Adapters:     "shared",
			Quantization: QuantizationConfig{Type: "nf4", BlockSize: 64, DoubleQuant: true},
			Optimizer: OptimizerConfig{
				Name: "adamw", LR: 2e-3, Betas: []float64{0.9, 0.999}, Eps: 1e-8,
				WeightDecay: 0, Momentum: 0.9,
			},
			Schedule: ScheduleConfig{Name: "cosine", WarmupSteps: DefaultWarmupSteps,
				NumCycles: 1, Power: 1, LREnd: 1e-7, DecayRatio: 0.1, DecayType: "cosine"},
			BatchSize: 8,
			GradAccum: 1,
			MaxSteps:  240,
			MaxEpochs: 3,
			ClipNorm:  1.0,
			LogEvery:  5,
			Eval: EvalConfig{
				Every:      80,
				MaxBatches: 64,
				Generation: GenerationConfig{Questions: 20, MaxNewTokens: 16, Samples: 2},
			},
			Checkpointing: CheckpointConfig{Every: 80, KeepLast: 2, Monitor: "val/loss", Mode: "min", TopK: 1},
			EarlyStopping: EarlyStoppingConfig{Monitor: "val/loss", Mode: "min", Patience: 3},
			Tracking:      TrackingConfig{OutputDir: "runs", TensorBoard: true},
			Seed:          42,
			Device:        "auto",
			Precision:     "auto",
			GEMMProvider:  "auto",

			AttentionKernel: "auto",
		},
	}
}

// MinMaxLength is the shortest data.max_length a run takes: a row must
// hold a chat template's markers and some of the example.
const MinMaxLength = 16

// DefaultWarmupSteps is Default()'s training.schedule.warmup_steps. It is
// sized for the default 240 steps: a run of fewer than 100 steps warms up
// for a tenth of its steps instead, with a note (Warmup). A value the user
// chose (Chose: any other, or 10 from --set or a hand-written file) is
// kept, held to max_steps by Validate.
const DefaultWarmupSteps = 10

// Warmup is the warmup the run uses, and a note when that is not
// training.schedule.warmup_steps: the default warmup, more than a tenth of
// max_steps, is scaled to a tenth of max_steps (rounded down), so that a
// short run is not mostly warmup (10 steps of 10 were: the learning rate
// never reached its value). The default is the value the user did not
// choose (Chose): from Default(), code, or the file `ftune init` wrote;
// 10 from --set or a hand-written file is kept as asked. Validate refuses
// a chosen warmup longer than max_steps. With warmup_ratio set, the
// ratio decides: ceil(ratio × max_steps), and 0 while max_epochs decides
// (the run computes it once the data gives its steps).
func (c *RunConfig) Warmup() (steps int, note string) {
	w, max := c.Training.Schedule.WarmupSteps, c.Training.MaxSteps
	if r := c.Training.Schedule.WarmupRatio; r > 0 {
		return pymath.CeilFraction(r, max), ""
	}
	if max <= 0 || w*10 <= max || c.Chose("training.schedule.warmup_steps") || c.Training.Schedule.Name == "constant" {
		return w, ""
	}
	where := ""
	if at := c.Where("training.schedule.warmup_steps"); at != "default" {
		where = at + ": "
	}
	return max / 10, fmt.Sprintf("%straining.schedule.warmup_steps: the default %d warmup steps are more than a tenth of training.max_steps (%d): the run warms up for %d (a tenth of its steps); set warmup_steps to choose", where, w, max, max/10)
}

// Notices are what reading the config has to tell the user without
// refusing it: retired keys it ignored, each with where it was set and why
// (see retiredKeys). A run prints them before training.
func (c *RunConfig) Notices() []string { return c.notices }

// retiredKeys are keys older run files may hold (ftune init wrote them)
// whose setting no longer exists, with the reason: a file holding one
// still loads, and its notice says the value is ignored.
var retiredKeys = map[string]string{
	"training.step_arena": "CPU training now always recycles the memory each step releases, driven by the tape's lifetimes (faster than the arena was, at the heap's peak memory; bench/results/cpu-pool-2026-12-06.md), so there is nothing to switch",
}

func (c *RunConfig) retired(path, where string) {
	c.notices = append(c.notices, fmt.Sprintf("%s: %s is retired and ignored: %s", where, path, retiredKeys[path]))
}

// File is the run file this config was read from ("" when built in code).
func (c *RunConfig) File() string { return c.file }

// Where says where the value at a dotted key path came from: "run.yaml:12",
// "--set training.optimizer.lr=3", "default", or "set in code" when no
// file or --set wrote it and it differs from Default()'s (a config built or
// changed in code records no sources, and calling its values defaults
// would send the user looking for a default they never had).
func (c *RunConfig) Where(path string) string {
	if s, ok := c.src[path]; ok {
		return s
	}
	// A whole list or map is checked under its own path; its elements
	// were recorded under path[i] or path.key.
	best := ""
	for p := range c.src {
		if (strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[")) && (best == "" || p < best) {
			best = p
		}
	}
	if best != "" {
		return c.src[best]
	}
	if !c.IsDefault(path) {
		return setInCode
	}
	return "default"
}

// setInCode is Where for a value no file or --set wrote that differs from
// the default.
const setInCode = "set in code"

// IsDefault says whether the value at a dotted key path (a leaf, a
// section, a list element path[i] or a map entry path.key) equals
// Default()'s, wherever it came from: ftune init writes every default into
// the file, so an unchanged key of that file must count as the default.
// An empty list or map equals an absent one. An unknown path is not a
// default.
func (c *RunConfig) IsDefault(path string) bool {
	got, ok1 := valueAt(reflect.ValueOf(c).Elem(), path)
	want, ok2 := valueAt(reflect.ValueOf(Default()).Elem(), path)
	if !ok1 || !ok2 {
		return !ok1 && !ok2 && mapEntryAbsent(c, path)
	}
	if (got.Kind() == reflect.Slice || got.Kind() == reflect.Map) && got.Len() == 0 && want.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(got.Interface(), want.Interface())
}

// mapEntryAbsent says a path names a map entry absent from both c and the
// defaults (data.weights.x in a config that has none): nothing differs.
func mapEntryAbsent(c *RunConfig, path string) bool {
	i := strings.LastIndex(path, ".")
	if i < 0 {
		return false
	}
	m, ok := valueAt(reflect.ValueOf(c).Elem(), path[:i])
	return ok && m.Kind() == reflect.Map
}

// valueAt finds the value at a dotted key path below v; false when the
// path names nothing (or an absent map entry or list element).
func valueAt(v reflect.Value, path string) (reflect.Value, bool) {
	parts := strings.Split(path, ".")
	for i := 0; i < len(parts); i++ {
		part, index := parts[i], -1
		if j := strings.IndexByte(part, '['); j >= 0 && strings.HasSuffix(part, "]") {
			n, err := strconv.Atoi(part[j+1 : len(part)-1])
			if err != nil {
				return reflect.Value{}, false
			}
			part, index = part[:j], n
		}
		switch {
		case v.Kind() == reflect.Struct && v.Type() != durationType:
			f, _, ok := fieldByKey(v.Type(), part)
			if !ok {
				return reflect.Value{}, false
			}
			v = v.FieldByIndex(f.Index)
		case v.Kind() == reflect.Map:
			// The rest of the path is the key (subject names may hold dots).
			v = v.MapIndex(reflect.ValueOf(strings.Join(parts[i:], ".")))
			return v, v.IsValid()
		default:
			return reflect.Value{}, false
		}
		if index >= 0 {
			if v.Kind() != reflect.Slice || index >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(index)
		}
	}
	return v, true
}

func (c *RunConfig) setSource(path, where string, written bool) {
	if c.src == nil {
		c.src = map[string]string{}
	}
	c.src[path] = where
	if written {
		if c.written == nil {
			c.written = map[string]bool{}
		}
		c.written[path] = true
	} else {
		delete(c.written, path)
	}
}

// Chose says the user chose the value at a dotted key path: it differs
// from Default()'s, or a --set or a run file gave it, unless that file
// is one ftune wrote (`ftune init`'s or a run's config.yaml, which show
// every default: their header says so; ParseRecord reads older records). A default behaving otherwise than the same value chosen
// (training.schedule.warmup_steps scales to short runs) asks this rather
// than IsDefault: a hand-written `warmup_steps: 10` is the user's 10. A
// config built in code records no sources, so there only a value that
// differs counts.
func (c *RunConfig) Chose(path string) bool {
	if !c.IsDefault(path) {
		return true
	}
	_, ok := c.src[path]
	return ok && !c.written[path]
}

// Clone returns a deep copy: no slice or map is shared, including those of
// fields added later (the copy walks the struct rather than listing them).
func (c *RunConfig) Clone() *RunConfig {
	out := *c
	deepCopy(reflect.ValueOf(&out).Elem())
	out.notices = append([]string(nil), c.notices...)
	out.src = maps.Clone(c.src)
	out.written = maps.Clone(c.written)
	return &out
}

// deepCopy replaces every slice and map reachable through v's exported
// fields by a copy of it (v already holds a shallow copy). nil stays nil.
func deepCopy(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				deepCopy(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(s, v)
		for i := 0; i < s.Len(); i++ {
			deepCopy(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(iter.Value())
			deepCopy(e)
			m.SetMapIndex(iter.Key(), e)
		}
		v.Set(m)
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(v.Elem())
			deepCopy(p.Elem())
			v.Set(p)
		}
	}
}
