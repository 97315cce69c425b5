package recipe

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/train"
)

// Mode says how subjects share adapters.
type Mode string

const (
	// Shared trains one adapter on all selected subjects, mixed by weight.
	Shared Mode = "shared"
	// PerSubject trains one adapter per subject in the same pass: each row
	// is routed through its subject's adapter.
	PerSubject Mode = "per-subject"
)

// DefaultMLPChunkTokens is the MLP chunk the memory plan turns on under a
// device-memory cap that needs it: 4096 rows keep the MLP's GEMMs large
// enough for the tensor cores while its chunk-sized tensors stay well
// under a gigabyte at Llama-3-8B's widths.
const DefaultMLPChunkTokens = 4096

// Options configure a run. Defaults returns the main job's settings.
type Options struct {
	ModelDir string // Hugging Face folder
	// DType is the storage of the frozen weights: "" or "auto" keeps the
	// checkpoint's; "bf16" requires a bf16 checkpoint (converting is not
	// implemented), checked before the weights are read.
	DType    string
	DataRoot string // subject folders (train/val/test + subject.yaml)
	// TokenCache, when set, is a folder of memory-mapped token caches
	// (`ftune data prepare`) that training reads instead of tokenising.
	TokenCache string
	Subjects   []string // nil = all
	Mode       Mode

	// DataFiles are the user's own data instead of subject folders: files
	// (.jsonl, .json, .csv, .parquet, .txt, .md), folders of such files, or
	// globs. Format and Shape say how to read them ("auto": by extension
	// and by the records' keys); Columns names the record fields of
	// Shape's columns (data.columns: subject.yaml's columns, for every
	// data file).
	DataFiles     []string
	Format, Shape string
	Columns       map[string]string
	// TextUnit is how a plain-text file (.txt, .md) is cut into examples:
	// auto (or ""; a line each for .txt, the whole file for Markdown),
	// line, paragraph or file (data.text_unit).
	TextUnit string
	// LongText is what becomes of a plain-text example longer than SeqLen:
	// split (or ""; cut into pieces of SeqLen, all trained on) or
	// truncate (its first SeqLen tokens). Conversations and prompt/answer
	// examples are truncated either way (data.long_text).
	LongText string
	// ValSplit is the fraction of each subject's training examples held
	// out for validation when the subject has no validation file; the
	// split is drawn with DataSeed, which also seeds the mixing.
	ValSplit float64
	DataSeed uint64
	// EvalAllRows, for Evaluate alone, evaluates every example of a
	// subject without a validation file instead of the ValSplit share:
	// none is held out, and none trained on.
	EvalAllRows bool `json:"-"`
	// Mixing is how subjects share the training rows: proportional (to
	// their size), uniform, or weights (MixWeights, by subject name).
	Mixing     string
	MixWeights map[string]float64
	// TrainOnInputs puts the loss on prompt tokens too, not only on the
	// assistant's answers.
	TrainOnInputs bool
	// MaskHistory learns only each conversation's last answer.
	MaskHistory bool
	// Dedup > 0 drops near-duplicate training examples at that Jaccard
	// similarity, before the validation hold-out; Rephrase is the
	// probability of rewriting an instruction with another phrasing of its
	// subject.yaml phrasings; PromptDropout the probability of replacing a
	// prompt token by the pad token, drawn per batch (data.augment).
	Dedup, Rephrase, PromptDropout float64
	// SkipBad skips malformed records, counting them (data.skip_bad).
	SkipBad bool

	OutDir  string // runs root
	RunName string // "" = timestamp
	// ResumeDir continues an interrupted run in that folder from its newest
	// usable checkpoint (same options as the original run).
	ResumeDir string
	// ResumeHint is how the log tells the user to continue an interrupted
	// run in runDir: the caller's way, a command line or an API field.
	// nil names ResumeDir.
	ResumeHint func(runDir string) string `json:"-"`

	Steps       int // optimizer steps; 0 = Epochs decides
	Epochs      int
	BatchSize   int
	GradAccum   int
	SeqLen      int
	Pack        bool
	LR          float64
	WarmupSteps int
	// WarmupRatio > 0 replaces WarmupSteps by ceil(WarmupRatio × Steps),
	// transformers' warmup_ratio, computed once Steps is known (when
	// Epochs decides, after the data is loaded).
	WarmupRatio float64
	// WarmupIsDefault says WarmupSteps is config.DefaultWarmupSteps and
	// not the user's choice (config.RunConfig.Chose): when Epochs decides, a run of fewer than ten
	// times as many steps warms up for a tenth of them instead, as
	// config.Warmup scales it when max_steps decides.
	WarmupIsDefault bool
	Schedule        string // one of optim.ScheduleNames
	// The schedules' own settings (training.schedule): MinLRRate is
	// cosine_with_min_lr's and warmup_stable_decay's floor as a fraction
	// of LR, NumCycles cosine_with_restarts' cycles, Power and LREnd
	// polynomial's exponent and final rate, DecayRatio and DecayType
	// warmup_stable_decay's share of decay steps (ceil(DecayRatio ×
	// Steps), at the end) and its shape (cosine, linear, 1-sqrt).
	MinLRRate   float64
	NumCycles   int
	Power       float64
	LREnd       float64
	DecayRatio  float64
	DecayType   string
	Optimizer   string // adamw (default) or sgd
	Betas       [2]float64
	Eps         float64
	Momentum    float64 // sgd
	WeightDecay float64
	ClipNorm    float64
	Seed        uint64

	// Objective is what the adapter learns: "" or "sft", the answers of
	// the examples (supervised fine-tuning), "dpo", preferences: Direct
	// Preference Optimization on records of a prompt with a chosen and a
	// rejected completion (package train/dpo), the frozen base as the
	// reference, or "kto", unpaired feedback: KTO on records of a prompt
	// with one completion labelled desirable or not (train/dpo's KTO),
	// the same reference. DPOBeta is DPO's β (0: TRL's default, 0.1);
	// DPOLossTypes, DPOLossWeights, DPOLabelSmoothing and DPOSimPOGamma
	// are TRL's loss_type (nil: sigmoid), loss_weights (nil: 1 each),
	// label_smoothing (robust's and simpo's) and simpo_gamma (0: 0.5), as
	// dpo.Spec takes them.
	Objective         string
	DPOBeta           float64
	DPOLossTypes      []string
	DPOLossWeights    []float64
	DPOLabelSmoothing float64
	DPOSimPOGamma     float64
	// KTOBeta is KTO's β (0: TRL's default, 0.1), KTODesirableWeight and
	// KTOUndesirableWeight its weights of the desirable and undesirable
	// examples' losses (Defaults: 1 each, TRL's), KTOLossType its
	// loss_type ("": kto; or apo_zero_unpaired), as dpo.KTOSpec takes
	// them.
	KTOBeta                                  float64
	KTODesirableWeight, KTOUndesirableWeight float64
	KTOLossType                              string

	R       int
	Alpha   float64
	Dropout float64
	Targets []string // module names, or {"all-linear"}
	RSLoRA  bool
	DoRA    bool // use_dora: a magnitude vector per adapted linear
	// LoRAPlusLRRatio > 0 is LoRA+: lora_B, and every one-dimensional
	// trainable parameter, learns at LR × the ratio (PEFT's
	// create_loraplus_optimizer groups, optim.LoRAPlusScale); 0 = off.
	LoRAPlusLRRatio float64
	// ModulesToSave lists modules trained in full beside the adapter
	// (PEFT's modules_to_save, e.g. embed_tokens and lm_head).
	ModulesToSave []string
	// InitAdapter, when set, is a PEFT adapter folder the run trains on
	// from where it is (training.lora.init_from) instead of a new adapter:
	// its adapter_config.json sets the shape (R, Alpha, Targets, RSLoRA,
	// DoRA and ModulesToSave are not read), Dropout and Seed its dropout;
	// under DPO and KTO it is also the reference, frozen. Its base must be
	// ModelDir's model; shared adapters only.
	InitAdapter string
	// NEFTuneAlpha > 0 adds NEFTune noise to the input embeddings during
	// training (never during evaluation).
	NEFTuneAlpha float64
	// Template names a built-in chat template (chatml, llama3, ...);
	// "" or "auto" uses the model's own.
	Template string
	// Thinking is passed to the chat template as enable_thinking (nil: not
	// passed, the template's default); a template that does not read it is
	// an error (Text.SetThinking).
	Thinking *bool

	EvalEvery     int // validation every N steps (0 = at the end only)
	EvalQuestions int // held-out questions per subject for exact match / multiple choice
	MaxNewTokens  int
	Samples       int // sample answers shown per subject

	// Device is auto (a GPU when usable, else the CPU), cpu, cuda or
	// cuda:N. Precision is auto (bf16 on a GPU: weights, activations and
	// tensor-core GEMMs in bf16, LoRA masters, optimizer state, norm
	// statistics and the loss in float32; float32 on the CPU), bf16 (on
	// the CPU: tensor.CPUBF16's products, float32 activations; refused
	// without AVX512_BF16 or arm64's BF16) or f32; a run replaces auto by the precision in
	// use.
	Device    string
	Precision string
	// GEMMProvider chooses who computes a GPU's matrix products: auto
	// (per shape the faster of ftune's kernels and cuBLASLt), ftune or
	// cublaslt (training.gemm_provider, --gemm-provider).
	GEMMProvider string
	// AttentionKernel chooses a GPU's attention kernels: auto, flash or
	// simt (training.attention_kernel, --attention-kernel; see
	// cudabackend.AttentionKernel).
	AttentionKernel string
	// device is the device preflight opened (nil: loadBase opens one).
	device *Device
	// AllowLongerThanModel lets SeqLen exceed the model's
	// max_position_embeddings (positions it never saw in training).
	AllowLongerThanModel bool
	// IgnoreMemoryEstimate trains even when the estimated peak memory
	// exceeds what the machine has available (a warning is printed).
	IgnoreMemoryEstimate bool
	// PaceCollector lets a CPU run whose frozen weights are most of its
	// memory plan lower Go's GOGC for the whole process (a line says so),
	// unless the GOGC variable is set: see collectorPercent. It changes a
	// process-wide setting, so it is the command's choice (the ftune
	// command sets it), not a library default.
	PaceCollector     bool
	Load4Bit          bool // NF4 base weights (QLoRA)
	GradCheckpointing bool
	// OffloadCheckpoints holds gradient checkpointing's saved block inputs
	// in a GPU's pinned host memory between the forward and the backward
	// (training.offload_checkpoints; nn.Model.OffloadCheckpoints).
	OffloadCheckpoints bool
	// MLPChunkTokens > 0 runs each block's MLP over chunks of this many
	// tokens, each recomputed by its own backward (training.mlp_chunk_tokens;
	// nn.Model.MLPChunkTokens).
	MLPChunkTokens int
	// MaxDeviceMemory caps the bytes a GPU's allocator reserves
	// (training.max_device_memory, --max-device-memory); the memory plan
	// is made for it. 0: no cap.
	MaxDeviceMemory int64
	// NoCPUPool leaves a CPU step's memory to Go's collector instead of
	// recycling it (train.Config.HeapOnly): FromConfig sets it from
	// FTUNE_CPU_POOL=0, to measure what the pool saves or to rule it out.
	NoCPUPool bool
	// Notices are printed before the run (config.RunConfig.Notices: retired
	// keys a run file still holds).
	Notices           []string
	MaxTime           time.Duration
	CheckpointEvery   int
	KeepLast          int    // checkpoints kept (newest)
	Monitor           string // validation metric ranking checkpoints ("" = none)
	MonitorMode       string // min or max
	TopK              int
	EarlyStopPatience int // > 0 turns early stopping on
	EarlyStopMinDelta float64
	// EarlyStopMonitor and EarlyStopMode are the metric early stopping
	// watches ("": Monitor and MonitorMode, the checkpoints' metric).
	EarlyStopMonitor, EarlyStopMode string
	SpikeFactor                     float64
	LogEvery                        int
	// EvalMaxBatches caps each validation at this many batches, spread
	// over the held-out set (train.ValBatches); 0 = all.
	EvalMaxBatches int
	TensorBoard    bool
	// Config is the resolved configuration written to the run folder as
	// config.yaml (nil: none; options.json is always written).
	Config []byte

	Log      io.Writer // progress and results; nil = discard
	Progress bool      // a progress bar instead of log lines
	// Results is where Evaluate prints its scores (nil: Log), so that
	// `ftune eval` keeps them on stdout and its notes on stderr.
	Results io.Writer `json:"-"`

	// Comm is the job's data-parallel workers (nil: this process alone).
	// Every worker runs Run with the same options; rank 0 writes the run.
	Comm dist.Comm `json:"-"`
	// WorkerLog is where a worker other than rank 0 logs, each line
	// prefixed with its rank (nil: discarded): rank 0 logs to Log. The
	// ftune command gives standard error.
	WorkerLog io.Writer `json:"-"`
}

// Defaults is the main job: LoRA r=16 on every linear of the base, the
// bundled subjects packed into 256-token rows, a few minutes on two cores.
func Defaults() Options {
	return Options{
		Mode: Shared, OutDir: "runs",
		Format: "auto", Shape: "auto", TextUnit: "auto", LongText: "split", ValSplit: 0.1, DataSeed: 42, Mixing: "proportional",
		Steps: 240, BatchSize: 8, GradAccum: 1, SeqLen: 256, Pack: true,
		LR: 2e-3, WarmupSteps: 10, Schedule: "cosine", Optimizer: "adamw", Betas: [2]float64{0.9, 0.999}, Eps: 1e-8,
		NumCycles: 1, Power: 1, LREnd: 1e-7, DecayRatio: 0.1, DecayType: "cosine",
		WeightDecay: 0, ClipNorm: 1, Seed: 42,
		R: 16, Alpha: 32, Dropout: 0.05, Targets: []string{"all-linear"},
		KTODesirableWeight: 1, KTOUndesirableWeight: 1,
		EvalEvery: 80, EvalMaxBatches: 64, EvalQuestions: 20, MaxNewTokens: 16, Samples: 2,
		CheckpointEvery: 80, KeepLast: 2, Monitor: "val/loss", MonitorMode: "min", TopK: 1,
		LogEvery: 5, TensorBoard: true, Device: "cpu", Precision: "auto", GEMMProvider: "auto", AttentionKernel: "auto",
	}
}

// MemoryLean is the preset Unsloth users reach for: the base held in NF4
// and decoder blocks recomputed in the backward.
func MemoryLean(o Options) Options {
	o.Load4Bit = true
	o.GradCheckpointing = true
	return o
}

// SubjectSpecific trains one adapter for one subject.
func SubjectSpecific(o Options, subject string) Options {
	o.Subjects = []string{subject}
	o.Mode = Shared
	return o
}

// MultiTask trains several subjects in one run, with one shared adapter or
// one adapter per subject (routed per row).
func MultiTask(o Options, subjects []string, perSubject bool) Options {
	o.Subjects = subjects
	o.Mode = Shared
	if perSubject {
		o.Mode = PerSubject
	}
	return o
}

// earlyStopping is the callback the options ask for (nil: none).
func (o Options) earlyStopping() *train.EarlyStopping {
	metric, mode := o.EarlyStopMonitor, o.EarlyStopMode
	if metric == "" {
		metric, mode = o.Monitor, o.MonitorMode
	}
	if mode == "" {
		mode = o.MonitorMode
	}
	if o.EarlyStopPatience <= 0 || metric == "" {
		return nil
	}
	return &train.EarlyStopping{Monitor: metric, Mode: mode, Patience: o.EarlyStopPatience, MinDelta: o.EarlyStopMinDelta}
}

// Validate checks ranges and combinations.
func (o Options) Validate() error {
	switch {
	case o.ModelDir == "":
		return fmt.Errorf("recipe: no model folder")
	case o.DataRoot == "" && len(o.DataFiles) == 0:
		return fmt.Errorf("recipe: no data (set a data root or data files)")
	case o.Steps < 0 || o.Epochs < 0 || (o.Steps == 0 && o.Epochs == 0):
		return fmt.Errorf("recipe: set steps or epochs (> 0), got %d and %d", o.Steps, o.Epochs)
	case o.BatchSize <= 0 || o.GradAccum <= 0:
		return fmt.Errorf("recipe: batch size and gradient accumulation must be > 0")
	case o.SeqLen < config.MinMaxLength:
		// config.Validate refuses it first, naming the line; this is for
		// programs that build Options themselves.
		return fmt.Errorf("recipe: sequence length %d is too short (data.max_length ≥ %d)", o.SeqLen, config.MinMaxLength)
	case o.LongText != "" && o.LongText != "split" && o.LongText != "truncate":
		return fmt.Errorf("recipe: data.long_text %q (want split or truncate)", o.LongText)
	case o.LR <= 0:
		return fmt.Errorf("recipe: learning rate must be > 0")
	case o.R <= 0 || o.Alpha <= 0:
		return fmt.Errorf("recipe: LoRA r and alpha must be > 0")
	case o.loraScaling() > lora.MaxScaling:
		// lora.Config's own check would refuse it too, but only once the
		// base is loaded, and in PEFT's key names.
		return fmt.Errorf("recipe: training.lora.alpha %g with training.lora.r %d scales the update by %.3g; ftune takes at most %g (published settings use 0.25 to 32)", o.Alpha, o.R, o.loraScaling(), float64(lora.MaxScaling))
	case o.NEFTuneAlpha < 0:
		return fmt.Errorf("recipe: NEFTune alpha must be >= 0")
	case o.Dropout < 0 || o.Dropout >= 1:
		return fmt.Errorf("recipe: LoRA dropout must be in [0,1)")
	case o.Steps > 0 && o.WarmupRatio == 0 && o.WarmupSteps > o.Steps:
		return fmt.Errorf("recipe: warmup (%d) longer than training (%d steps)", o.WarmupSteps, o.Steps)
	case !(o.WarmupRatio >= 0 && o.WarmupRatio < 1):
		return fmt.Errorf("recipe: training.schedule.warmup_ratio %v: want [0, 1)", o.WarmupRatio)
	case o.LoRAPlusLRRatio != 0 && !(o.LoRAPlusLRRatio >= 1 && !math.IsInf(o.LoRAPlusLRRatio, 0)):
		return fmt.Errorf("recipe: training.lora.loraplus_lr_ratio %v: want 0 (off) or >= 1", o.LoRAPlusLRRatio)
	case o.Mode != Shared && o.Mode != PerSubject:
		return fmt.Errorf("recipe: mode %q (shared or per-subject)", o.Mode)
	case o.MLPChunkTokens < 0:
		return fmt.Errorf("recipe: training.mlp_chunk_tokens %d: want ≥ 0 (0: the MLP over all tokens at once)", o.MLPChunkTokens)
	case o.MLPChunkTokens > 0 && o.Mode == PerSubject:
		return fmt.Errorf("recipe: training.mlp_chunk_tokens cuts the batch's tokens into chunks, and per-subject adapters route whole batch rows; set one of them off (training.adapters: shared, or mlp_chunk_tokens: 0)")
	case o.OffloadCheckpoints && !o.GradCheckpointing:
		return fmt.Errorf("recipe: training.offload_checkpoints moves gradient checkpointing's saved block inputs to host memory, and training.gradient_checkpointing is off; set it true (or offload_checkpoints false)")
	case o.OffloadCheckpoints && o.Device == "cpu":
		return fmt.Errorf("recipe: training.offload_checkpoints moves a GPU's saved block inputs to host memory; with --device cpu they are in host memory already, so it is refused there")
	}
	if err := o.validateObjective(); err != nil {
		return err
	}
	return o.validateWorld()
}

// fitWarmup holds WarmupSteps to the run's Steps once the epochs have set
// them, as config.Warmup and Validate hold it to max_steps: the default
// is scaled to a tenth of a run under ten times as long, saying so, and
// any other warmup longer than the run is refused (the learning rate
// would never reach its value).
func (o *Options) fitWarmup(log io.Writer) error {
	w := o.WarmupSteps
	switch {
	case o.WarmupRatio > 0 || o.Schedule == "constant" || w*10 <= o.Steps:
	case o.WarmupIsDefault:
		o.WarmupSteps = o.Steps / 10
		fmt.Fprintf(log, "note: training.schedule.warmup_steps: the default %d warmup steps are more than a tenth of the run's %d steps (training.max_epochs %d): the run warms up for %d (a tenth of its steps); set warmup_steps to choose\n", w, o.Steps, o.Epochs, o.WarmupSteps)
	case w > o.Steps:
		return fmt.Errorf("recipe: training.schedule.warmup_steps %d is more than the run's %d steps (training.max_epochs %d of the data): the learning rate would never reach its value; lower it, or set warmup_ratio", w, o.Steps, o.Epochs)
	}
	return nil
}

// warmupSteps is the run's warmup: ceil(WarmupRatio × Steps) when
// WarmupRatio is set, else WarmupSteps. Steps must be the run's (run
// sets it from the epochs once the data is loaded).
func (o *Options) warmupSteps() int {
	if o.WarmupRatio > 0 {
		return optim.StepsOfRatio(o.WarmupRatio, o.Steps)
	}
	return o.WarmupSteps
}

// schedule is the run's learning-rate schedule over its Steps.
func (o *Options) schedule() (optim.Schedule, error) {
	spec := optim.ScheduleSpec{Name: o.Schedule, WarmupSteps: o.warmupSteps(), TotalSteps: o.Steps,
		NumCycles: o.NumCycles, MinLRRate: o.MinLRRate, LR: o.LR, LREnd: o.LREnd, Power: o.Power, DecayType: o.DecayType}
	if o.Schedule == "warmup_stable_decay" {
		spec.DecaySteps = optim.StepsOfRatio(o.DecayRatio, o.Steps)
	}
	s, err := spec.Build()
	if err != nil {
		hint := ""
		if o.Schedule == "warmup_stable_decay" {
			hint = fmt.Sprintf(" (decay_ratio %g: lower it or the warmup)", o.DecayRatio)
		}
		return nil, fmt.Errorf("recipe: training.schedule over the run's %d steps: %w%s", o.Steps, err, hint)
	}
	return s, nil
}

// scheduleSummary says the schedule the run uses, for its log: the name,
// the warmup in steps (and where it comes from) and the phases or floors
// the name's settings give, then LoRA+'s rates.
func (o *Options) scheduleSummary() string {
	w := o.warmupSteps()
	out := fmt.Sprintf("learning rate %g, %s schedule", o.LR, o.Schedule)
	if o.Schedule != "constant" {
		out += fmt.Sprintf(", warmup %d steps", w)
		if o.WarmupRatio > 0 {
			out += fmt.Sprintf(" (warmup_ratio %g of %d steps)", o.WarmupRatio, o.Steps)
		}
	}
	switch o.Schedule {
	case "cosine_with_min_lr":
		out += fmt.Sprintf(", down to %g (min_lr_rate %g)", o.LR*o.MinLRRate, o.MinLRRate)
	case "cosine_with_restarts":
		out += fmt.Sprintf(", %d cycles", o.NumCycles)
	case "polynomial":
		out += fmt.Sprintf(", power %g down to %g", o.Power, o.LREnd)
	case "warmup_stable_decay":
		d := optim.StepsOfRatio(o.DecayRatio, o.Steps)
		out += fmt.Sprintf(", %d stable, %d decay steps (%s, down to %g)", o.Steps-w-d, d, o.DecayType, o.LR*o.MinLRRate)
	}
	if o.LoRAPlusLRRatio > 0 {
		out += fmt.Sprintf("; LoRA+: lora_B at %g × %g", o.LR, o.LoRAPlusLRRatio)
	}
	return out
}

// loraScaling is the adapter's s in W·x + s·B·A·x: alpha/r, or alpha/√r
// with rsLoRA.
func (o *Options) loraScaling() float64 {
	if o.RSLoRA {
		return o.Alpha / math.Sqrt(float64(o.R))
	}
	return o.Alpha / float64(o.R)
}

// loraKind names the adapter variant for the log: LoRA or DoRA, with
// rsLoRA's scaling.
func (o *Options) loraKind() string {
	k := "LoRA"
	if o.DoRA {
		k = "DoRA"
	}
	if o.RSLoRA {
		k += " (rsLoRA scaling)"
	}
	return k
}
