package ftune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/track"
)

// RunConfig is a run's configuration: the schema of the YAML file
// `ftune init` writes (package config: Default, Load, Validate).
type RunConfig = config.RunConfig

// TrainResult is what a run did: its folder, the exported adapters, the
// evaluations before and after, and why it stopped early (Stopped: "" when
// it trained all its steps, else one of the Stopped constants, or text
// that begins with StoppedEarly).
type TrainResult = recipe.Result

// Why a run stopped before its last step (TrainResult.Stopped).
const (
	// StoppedInterrupted: ctx was cancelled once a step was trained; the
	// checkpoint is saved, and TrainOptions.Resume on RunDir continues.
	StoppedInterrupted = "interrupted"
	// StoppedMaxTime: training.max_time ran out; the checkpoint is saved.
	StoppedMaxTime = "max_time"
	// StoppedAlreadyFinished: a resumed run had trained all its steps
	// already; nothing was trained.
	StoppedAlreadyFinished = "already finished"
	// StoppedEarly begins Stopped when early stopping ended the run; the
	// rest names the metric that did not improve
	// (strings.HasPrefix(res.Stopped, StoppedEarly)).
	StoppedEarly = "early stopping"
)

// Evaluation is a model's validation metrics and held-out answers.
type Evaluation = recipe.Evaluation

// DefaultConfig returns the main job's configuration (tiny-base on the
// bundled subjects).
func DefaultConfig() *RunConfig { return config.Default() }

// Train runs a fine-tuning as `ftune train` does: cfg (nil: DefaultConfig)
// is validated, mapped onto a run (recipe.FromConfig) and run; progress
// and results go to log (nil discards them). cfg itself is left as it was:
// the run works on a copy.
//
// Cancelling ctx follows one rule: a non-nil error means the call left
// nothing to continue from. Cancelled once a step was trained (or a
// resumed run restored its checkpoint), the run stops after the current
// step with its checkpoint saved, as on max_time or early stopping: Train
// returns the result with Stopped StoppedInterrupted and a nil error, and
// TrainOptions.Resume on its RunDir continues it (cancelled during the
// evaluation after training, the adapter is saved too). Cancelled before
// that (before the call, while loading the model and data, during the
// evaluation before training, or before the first step ended), nothing
// was trained: Train returns a nil result and an error wrapping
// ctx.Err(), so errors.Is(err, context.Canceled) holds; a run folder made
// by then holds no checkpoint, and the error names it.
func Train(ctx context.Context, cfg *RunConfig, log io.Writer) (*TrainResult, error) {
	return TrainWith(ctx, cfg, TrainOptions{Log: log})
}

// TrainOptions are the settings of a run that are not in its run file.
type TrainOptions struct {
	Log      io.Writer // progress and results; nil discards them
	Progress bool      // a progress bar on Log instead of one line per logged step
	// Resume continues the run in this folder from its newest usable
	// checkpoint; cfg must be the run's own (its config.yaml). A setting
	// outside ResumeSafe that differs from the config the run started
	// with (recorded in its options.json) is refused, wrapping
	// ErrResumeChanged; the changes allowed are printed to Log and
	// recorded in the folder's config.yaml.
	Resume string
	// TokenCache is a folder of token caches (`ftune data prepare`) read
	// instead of tokenising, built there when missing or stale: the run
	// file's data.token_cache, which it replaces when set (the run's
	// config.yaml records it, made absolute). A resume without one uses
	// the folder the run started with, saying so.
	TokenCache string
	// Comm makes this process one data-parallel worker of a job
	// (dist.FromEnv under mpirun or srun); nil trains alone. The
	// configured batch is the job's global batch, and only rank 0 writes.
	Comm dist.Comm
	// LocalRank is this worker's index on its machine (dist.Launch), which
	// picks its GPU; -1 when the launcher does not say.
	LocalRank int
	// WorkerLog is where a worker other than rank 0 logs, each line
	// prefixed with its rank; nil discards it (rank 0 logs to Log). The
	// ftune command gives standard error.
	WorkerLog io.Writer
	// ResumeHint is how Log tells the user to continue an interrupted run
	// in runDir. nil names this API (TrainOptions.Resume = runDir); the
	// ftune command sets its command line (ftune train --resume runDir).
	ResumeHint func(runDir string) string
	// PaceCollector lets a CPU run set Go's GOGC for the whole process
	// from its memory plan, unless GOGC is set (recipe.Options'
	// PaceCollector). The ftune command sets it; a program that embeds
	// ftune and tunes its own collector leaves it off.
	PaceCollector bool
}

// TrainWith is Train with the settings outside the run file; a cancelled
// ctx follows Train's rule.
func TrainWith(ctx context.Context, cfg *RunConfig, opt TrainOptions) (*TrainResult, error) {
	if err := checkCtx("train", ctx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		// Before anything: a resume would otherwise rewrite config.yaml.
		return nil, fmt.Errorf("train: cancelled before the run started: nothing was done (%w)", err)
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	// A deep copy: nothing done to the config on the way may reach the
	// caller's and carry into its next run (recipe.FromConfig once wrote
	// the settings in effect, a warmup and an evaluation interval cut to a
	// short run, into the config it was given).
	cfg = cfg.Clone()
	if opt.Resume != "" {
		// The run's relative paths are the folder it started in's.
		if err := inRunDir(cfg, opt.Resume); err != nil {
			return nil, fmt.Errorf("resume %s: %w", opt.Resume, err)
		}
	}
	if opt.TokenCache != "" {
		cfg.Data.TokenCache = opt.TokenCache
	}
	var notes []string
	if opt.Resume != "" && cfg.Data.TokenCache == "" {
		// The tokens the run started from, instead of reading and
		// tokenizing its data again (minutes on a large file), recorded
		// in config.yaml as the resume's: a config without one (a run
		// file's data.token_cache emptied, a Go caller's config) cannot
		// say whether it meant to go without, and the rows are the
		// run's either way.
		dir, note := runTokenCache(opt.Resume)
		cfg.Data.TokenCache = dir
		if note != "" {
			notes = append(notes, note)
		}
	}
	if tc := cfg.Data.TokenCache; tc != "" {
		// Absolute, as config.yaml and options.json record it: a resume
		// or an evaluation from another folder finds the same caches.
		if abs, err := filepath.Abs(tc); err == nil {
			cfg.Data.TokenCache = abs
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, invalid(err) // the caller's config (config.ErrInvalid, config.FieldError)
	}
	o, err := recipe.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	var record func() error
	if opt.Resume != "" {
		// Only rank 0 writes the run folder; every worker refuses alike.
		write := opt.Comm == nil || opt.Comm.Rank() == 0
		if record, err = checkResume(opt.Resume, cfg, o.Config, opt.Log, write); err != nil {
			return nil, err
		}
	}
	o.Log, o.Progress, o.ResumeDir = opt.Log, opt.Progress, opt.Resume
	o.Notices = append(o.Notices, notes...)
	o.PaceCollector = opt.PaceCollector
	o.ResumeHint = opt.ResumeHint
	if o.ResumeHint == nil {
		o.ResumeHint = func(dir string) string { return fmt.Sprintf("resume it with TrainOptions.Resume = %q", dir) }
	}
	if opt.Comm != nil && opt.Comm.Size() > 1 {
		o.Comm, o.WorkerLog = opt.Comm, opt.WorkerLog
		o.Device = recipe.WorkerDevice(o.Device, opt.LocalRank)
	}
	// The allowed changes are recorded once the run folder is locked: a
	// resume refused because another process runs it writes nothing.
	res, err := recipe.RunLocked(ctx, o, record)
	return cancelled(ctx, res, err)
}

// cancelled applies Train's rule on cancellation to a run's outcome. A
// run interrupted at step 0 stopped before its first step ended: the
// checkpointer saves a completed step only, so its run folder holds none
// (a resumed run is at its checkpoint's step, never 0). An error of a run
// whose ctx was cancelled wraps ctx.Err() (recipe's loading does; this
// makes it so for every stage).
func cancelled(ctx context.Context, res *TrainResult, err error) (*TrainResult, error) {
	cause := ctx.Err()
	switch {
	case err != nil:
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return nil, err
	case res != nil && res.Stopped == StoppedInterrupted && res.Steps == 0:
		if cause == nil {
			cause = context.Canceled // another worker's interrupt, which Fit agreed on
		}
		where := ""
		if res.RunDir != "" {
			where = fmt.Sprintf(": the run folder %s holds no checkpoint (resuming it starts it again from step 0)", res.RunDir)
		}
		return nil, fmt.Errorf("train: interrupted before the first step ended: nothing was trained%s (%w)", where, cause)
	}
	return res, nil
}

// ErrRunExists is wrapped by Train's error (and FineTune's) when the run
// folder it would make (training.tracking.output_dir/run_name) is there
// already: another run, finished or running now (two Trains at once into
// one folder: one of them is refused so), is not written over
// (track.ErrRunExists, which it is).
var ErrRunExists = track.ErrRunExists

// ResumeSafe are the keys a resumed run may change: they extend or bound
// the run, say where it computes or how it holds its memory (gradient
// checkpointing and offload are bit for bit the same step; MLP chunks
// reorder a float32 sum), and leave the optimisation up to the checkpoint
// as it was. Any other change (learning rate, lengths, data, adapter
// shape) would continue one run with another's settings.
var ResumeSafe = []string{"training.max_steps", "training.max_time", "training.device", "training.precision", "training.max_device_memory", "training.gemm_provider", "training.attention_kernel",
	"training.gradient_checkpointing", "training.offload_checkpoints", "training.mlp_chunk_tokens",
	// How many checkpoints are kept (a full disk's advice: keep fewer,
	// then resume), not what is trained.
	"training.checkpointing.keep_last", "training.checkpointing.top_k",
	// Where tokens are cached: the rows are the same whatever the folder.
	"data.token_cache"}

// defaultWarmup is the warmup the default warmup_steps gives a run of
// maxSteps steps (config.RunConfig.Warmup).
func defaultWarmup(maxSteps int) int {
	c := config.Default()
	c.Training.MaxSteps = maxSteps
	w, _ := c.Warmup()
	return w
}

// ErrResumeChanged is wrapped when a resume's config changes a setting
// outside ResumeSafe from the one the run started with.
var ErrResumeChanged = errors.New("the config differs from the one the run started with")

// checkResume refuses a resume whose config changes a key outside
// ResumeSafe, compared with the config the run started with (startConfig:
// not config.yaml, which a user may edit), and names each with its old and
// new value and where it was set. When write (rank 0), record prints the
// changes that are allowed, compared with config.yaml (what the folder
// says the run did so far), to log and records them by rewriting
// config.yaml with resolved (cfg as in effect, recipe.Options.Config), as
// `ftune train --resume` always did; the caller runs it once it holds the
// run folder's lock (recipe.RunLocked). record is nil when there is
// nothing to do.
func checkResume(dir string, cfg *RunConfig, resolved []byte, log io.Writer, write bool) (record func() error, err error) {
	start, from, err := startConfig(dir)
	if err != nil {
		return nil, err
	}
	// resolved is cfg as the run records it (with the settings in effect),
	// the same form as the recorded configs it is compared with.
	now, err := config.Parse(resolved, "the resolved config")
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	// The settings in effect follow max_steps (an evaluation interval or
	// the default warmup cut to a short run): resolved for the run's
	// starting max_steps, what is left to differ is what cfg changed, not
	// what a longer or shorter run adjusts.
	same := cfg.Clone()
	same.Training.MaxSteps = start.Training.MaxSteps
	o, err := recipe.FromConfig(same)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	asStarted, err := config.Parse(o.Config, "the resolved config")
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	yamlPath := filepath.Join(dir, "config.yaml")
	recorded, yamlErr := LoadRunConfig(dir)
	var editedKeys []config.Change // what config.yaml changed since the start
	// An evaluation interval that an earlier resume cut to its shorter run
	// (config.yaml then records eval.every = max_steps, the setting in
	// effect) is that resume's doing, not a change: comparing it with the
	// start refused every later resume of the run.
	// Likewise the default warmup an earlier resume rescaled to its
	// max_steps (a tenth of a run under 100 steps: config.yaml records the
	// warmup in effect).
	everyCut, warmupCut := false, false
	if yamlErr == nil {
		editedKeys = config.Diff(start, recorded)
		r := recorded.Training
		everyCut = r.Eval.Every == r.MaxSteps && start.Training.Eval.Every > r.MaxSteps && asStarted.Training.Eval.Every == r.Eval.Every
		w := r.Schedule.WarmupSteps
		warmupCut = w == defaultWarmup(r.MaxSteps) && start.Training.Schedule.WarmupSteps == defaultWarmup(start.Training.MaxSteps) && asStarted.Training.Schedule.WarmupSteps == w
	}
	var bad []string
	edited := false
	for _, c := range config.Diff(start, asStarted) {
		if slices.Contains(ResumeSafe, c.Path) || c.Path == "training.eval.every" && everyCut || c.Path == "training.schedule.warmup_steps" && warmupCut {
			continue
		}
		line := "  " + c.String()
		if at := whereSet(cfg, start, c); at != "" {
			line += " (" + at + ")"
		}
		bad = append(bad, line)
		// A key config.yaml changed too: the file was edited after the
		// run started, which the user may not know a resume refuses.
		if slices.ContainsFunc(editedKeys, func(d config.Change) bool { return d.Path == c.Path }) {
			edited = true
		}
	}
	if len(bad) > 0 {
		hint := ""
		if edited {
			hint = fmt.Sprintf(" (%s was edited after the run started: put those keys back)", yamlPath)
		}
		return nil, fmt.Errorf("resume %s: %w (%s) in settings that would change its optimisation:\n%s\na resumed run may change only %s; start a new run for the others%s",
			dir, ErrResumeChanged, from, strings.Join(bad, "\n"), strings.Join(ResumeSafe, ", "), hint)
	}
	base := recorded
	if yamlErr != nil {
		base = start // config.yaml unreadable: it is rewritten whole
	}
	changes := config.Diff(base, now)
	if !write || len(changes) == 0 && yamlErr == nil {
		return nil, nil // the other workers would print the changes again
	}
	return func() error {
		if log != nil {
			for _, c := range changes {
				fmt.Fprintln(log, c)
			}
		}
		// config.yaml says what the run does from now on.
		if err := fsutil.WriteFileAtomic(yamlPath, resolved, 0o644); err != nil {
			return fmt.Errorf("resume %s: %w", dir, err)
		}
		return nil
	}, nil
}

// whereSet is where cfg's value of a changed key came from ("" when not
// known). cfg.Where keeps the line of the file cfg was read from even
// after code changed the value: that line is named only when the file
// says the new value, else the change was made in code.
func whereSet(cfg, start *RunConfig, c config.Change) string {
	at := cfg.Where(c.Path)
	if at == "default" {
		return ""
	}
	if f := cfg.File(); f == "" || !strings.HasPrefix(at, f+":") {
		return at
	}
	file, err := config.Load(cfg.File())
	if err == nil && slices.Contains(config.Diff(start, file), c) {
		return at
	}
	return "set in code"
}

// readOptionsJSON reads a run folder's options.json, bounded and from a
// regular file only (a named pipe there would hang a resume).
func readOptionsJSON(dir string) ([]byte, error) {
	return fsutil.ReadFileLimit(filepath.Join(dir, "options.json"), 16<<20)
}

// runTokenCache is the token cache folder the run in dir last used (its
// config.yaml's data.token_cache, which an earlier resume may have
// changed; else options.json's TokenCache, for a run started before
// config.yaml recorded it), with a note saying that the resume reads it;
// or, when that folder is gone, "" and a note saying so; "" and "" when
// the run used none.
func runTokenCache(dir string) (cache, note string) {
	var rec struct{ TokenCache string }
	if cfg, err := LoadRunConfig(dir); err == nil {
		rec.TokenCache = cfg.Data.TokenCache
	}
	if rec.TokenCache == "" {
		b, err := readOptionsJSON(dir)
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.TokenCache == "" {
			return "", ""
		}
	}
	if st, err := os.Stat(rec.TokenCache); err != nil || !st.IsDir() {
		return "", fmt.Sprintf("the run's token cache %s is gone: its data is read and tokenized again", rec.TokenCache)
	}
	return rec.TokenCache, fmt.Sprintf("resuming with the run's token cache %s (data.token_cache or TrainOptions.TokenCache, the command's --token-cache, for another)", rec.TokenCache)
}

// startConfig is the config a run started with: the one recorded in its
// options.json (written once, when the run starts, and not meant to be
// edited), with from naming it. A folder without it (written before
// options.json held the config) falls back to config.yaml.
func startConfig(dir string) (cfg *RunConfig, from string, err error) {
	path := filepath.Join(dir, "options.json")
	b, err := readOptionsJSON(dir)
	if err == nil {
		var rec struct{ Config []byte }
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, "", fmt.Errorf("resume %s: %s: %w", dir, path, err)
		}
		if len(rec.Config) > 0 {
			from = "recorded in " + path
			if cfg, err = config.ParseRecord(rec.Config, path); err != nil {
				return nil, "", fmt.Errorf("resume %s: the config %s: %w", dir, from, err)
			}
			return cfg, from, inRunDir(cfg, dir)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("resume %s: %w", dir, err)
	}
	path = filepath.Join(dir, "config.yaml")
	if cfg, err = LoadRunConfig(dir); err != nil {
		return nil, "", fmt.Errorf("resume %s: not a run folder: %w", dir, err)
	}
	return cfg, "recorded in " + path, nil
}

// Example is one training example: a conversation (Messages, with
// Tools) or a plain text (Text), never both. In a conversation the
// assistant's messages are what the model learns to produce, their tool
// calls included; tool messages hold the results the calls got, and are
// not learnt.
type Example struct {
	Messages []Message `json:"messages,omitempty"`
	// Tools are the functions the model may call, a JSON list of their
	// schemas as transformers takes them ([{"type": "function",
	// "function": {"name", "description", "parameters"}}]), shown to the
	// model by the chat template; nil for none.
	Tools json.RawMessage `json:"tools,omitempty"`
	// Text is a plain-text example, a document learnt whole, without a
	// chat template (continued pretraining, as a data file's {"text": ...}
	// record). One longer than data.max_length is cut into pieces of
	// max_length tokens, each trained on (data.long_text: split, the
	// default), or only its start is (truncate).
	Text string `json:"text,omitempty"`
}

// checkExample refuses an example that is not one conversation or one
// plain text (data/format's rules that FineTune can check before any
// work; a text's invalid UTF-8, which encoding/json would silently
// replace, as the data reader refuses it in a file).
func checkExample(ex Example) error {
	if ex.Text == "" {
		if len(ex.Messages) == 0 {
			return fmt.Errorf("has no messages and no text (an example is a conversation, Messages, or a plain text, Text)")
		}
		if _, err := checkTools(ex.Tools); err != nil {
			return err
		}
		return checkRoles(ex.Messages)
	}
	tools, err := checkTools(ex.Tools)
	switch {
	case len(ex.Messages) > 0:
		return fmt.Errorf("has both text and messages: an example is a conversation (Messages) or a plain text (Text), not both")
	case err != nil:
		return err
	case tools > 0:
		return fmt.Errorf("has text and tools: tools are shown to the model in a conversation, and a plain text has none")
	case strings.TrimSpace(ex.Text) == "":
		return fmt.Errorf("text is only white space")
	case !utf8.ValidString(ex.Text):
		return fmt.Errorf("text is not valid UTF-8 (at byte %d)", invalidUTF8At(ex.Text))
	}
	return nil
}

// invalidUTF8At is the offset of s's first byte that is not valid UTF-8.
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// ErrNoExamples is wrapped by the error of FineTune and
// FineTunePreferences without examples; it matches ErrInvalidInput too.
var ErrNoExamples = errors.New("no training examples")

// FineTune trains on examples held in memory, conversations or plain
// texts or both, with cfg's other settings (nil: DefaultConfig); cfg's
// data.root, files, subjects, format, shape and text_unit, which say
// where and how data files are read, are replaced by the examples. The
// examples are written as a subject dataset named "examples" under
// <output_dir>/data/examples-<hash of the examples>/ and kept there, so
// that the run records its data and can be resumed; the same examples
// reuse the same folder. A data file holds one shape of record, so
// conversations given with plain texts are written as two files in that
// folder, conversations.jsonl and documents.jsonl, read in that order as
// one subject named "data" (data.files). No examples (ErrNoExamples), an
// example with neither messages nor text or with both, text with tools,
// a role other than system, user, assistant and tool (ErrUnknownRole),
// or Tools that are not a JSON list is refused before any work, naming
// the example's index, with an error matching ErrInvalidInput; the rest
// of a conversation's checks (a tool result after the call it answers,
// ...) are the data reader's, naming the example's line in the written
// file.
func FineTune(ctx context.Context, examples []Example, cfg *RunConfig, log io.Writer) (*TrainResult, error) {
	if err := checkCtx("fine-tune", ctx); err != nil {
		return nil, err
	}
	lines, err := jsonLines("example", examples, checkExample)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	convs, texts := byShape(lines, examples)
	if len(convs) == 0 || len(texts) == 0 {
		return trainInMemory(ctx, []memFile{{"train.jsonl", lines}}, cfg, log)
	}
	return trainInMemory(ctx, []memFile{{"conversations.jsonl", convs}, {"documents.jsonl", texts}}, cfg, log)
}

// byShape parts the JSON lines of examples (one each, in order) into the
// conversations' and the plain texts'.
func byShape(lines []byte, examples []Example) (convs, texts []byte) {
	for _, ex := range examples {
		n := bytes.IndexByte(lines, '\n') + 1 // JSON text holds no raw newline
		if ex.Text != "" {
			texts = append(texts, lines[:n]...)
		} else {
			convs = append(convs, lines[:n]...)
		}
		lines = lines[n:]
	}
	return convs, texts
}

// Preference is one preference for DPO: a conversation's opening (the
// prompt) and two continuations of it by the assistant, Chosen preferred
// over Rejected.
type Preference struct {
	Prompt   []Message `json:"prompt"`
	Chosen   []Message `json:"chosen"`
	Rejected []Message `json:"rejected"`
	// Tools are the functions the model may call (as Example.Tools).
	Tools json.RawMessage `json:"tools,omitempty"`
}

// FineTunePreferences trains on preferences held in memory with Direct
// Preference Optimization (cfg's training.objective is set to dpo; its
// training.dpo.beta and other settings apply; nil: DefaultConfig). Like
// FineTune, the pairs are written as a subject dataset under
// <output_dir>/data/examples-<hash>/ and kept there. A pair whose fields
// are not a prompt and two different assistant replies is refused when
// the data is read, naming its line.
func FineTunePreferences(ctx context.Context, prefs []Preference, cfg *RunConfig, log io.Writer) (*TrainResult, error) {
	if err := checkCtx("fine-tune", ctx); err != nil {
		return nil, err
	}
	lines, err := jsonLines("preference", prefs, func(p Preference) error {
		if len(p.Prompt) == 0 || len(p.Chosen) == 0 || len(p.Rejected) == 0 {
			return fmt.Errorf("prompt, chosen and rejected each need a message (have %d, %d, %d)", len(p.Prompt), len(p.Chosen), len(p.Rejected))
		}
		if _, err := checkTools(p.Tools); err != nil {
			return err
		}
		for _, part := range []struct {
			name string
			msgs []Message
		}{{"prompt", p.Prompt}, {"chosen", p.Chosen}, {"rejected", p.Rejected}} {
			if err := checkRoles(part.msgs); err != nil {
				return fmt.Errorf("%s: %w", part.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return trainInMemoryAs(ctx, lines, cfg, "dpo", log)
}

// Feedback is one piece of unpaired feedback for KTO: a conversation's
// opening (the prompt), one continuation of it by the assistant, and
// whether that continuation is desirable (a thumbs up) or not.
type Feedback struct {
	Prompt     []Message `json:"prompt"`
	Completion []Message `json:"completion"`
	Desirable  bool      `json:"label"`
	// Tools are the functions the model may call (as Example.Tools).
	Tools json.RawMessage `json:"tools,omitempty"`
}

// FineTuneFeedback trains on unpaired feedback held in memory with KTO
// (cfg's training.objective is set to kto; its training.kto settings
// apply; nil: DefaultConfig), as FineTunePreferences does with pairs: the
// records are written as a subject dataset under
// <output_dir>/data/examples-<hash>/ and kept there. A record whose prompt
// or completion is empty or holds an unknown role is refused naming it.
func FineTuneFeedback(ctx context.Context, feedback []Feedback, cfg *RunConfig, log io.Writer) (*TrainResult, error) {
	if err := checkCtx("fine-tune", ctx); err != nil {
		return nil, err
	}
	lines, err := jsonLines("feedback", feedback, func(f Feedback) error {
		if len(f.Prompt) == 0 || len(f.Completion) == 0 {
			return fmt.Errorf("prompt and completion each need a message (have %d, %d)", len(f.Prompt), len(f.Completion))
		}
		if _, err := checkTools(f.Tools); err != nil {
			return err
		}
		if err := checkRoles(f.Prompt); err != nil {
			return fmt.Errorf("prompt: %w", err)
		}
		if err := checkRoles(f.Completion); err != nil {
			return fmt.Errorf("completion: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return trainInMemoryAs(ctx, lines, cfg, "kto", log)
}

// trainInMemoryAs is trainInMemory with cfg's training.objective set to
// objective (nil cfg: DefaultConfig); the caller's cfg is not changed.
func trainInMemoryAs(ctx context.Context, lines []byte, cfg *RunConfig, objective string, log io.Writer) (*TrainResult, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := cfg.Clone()
	c.Training.Objective = objective
	return trainInMemory(ctx, []memFile{{"train.jsonl", lines}}, c, log)
}

// jsonLines checks each item and writes it as a JSON line; an item that
// fails is named by its kind and index, as invalid input.
func jsonLines[T any](kind string, items []T, check func(T) error) ([]byte, error) {
	if len(items) == 0 {
		return nil, invalid(ErrNoExamples)
	}
	var lines []byte
	for i, it := range items {
		if err := check(it); err != nil {
			return nil, invalidf("fine-tune: %s %d: %w", kind, i, err)
		}
		b, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("fine-tune: %s %d: %w", kind, i, err)
		}
		lines = append(append(lines, b...), '\n')
	}
	return lines, nil
}

// memFile is a data file trainInMemory writes: its name and JSON lines.
type memFile struct {
	name  string
	lines []byte
}

// trainInMemory writes files into the folder "examples" of a data root
// named after their hash under the output folder, and trains cfg on
// them: one file, train.jsonl, as the subject "examples" of that root;
// several (one per shape of record) as data files read in order as one
// subject, "data". Where data is read from (data.root, files, subjects)
// is the written files; how they are read (data.format, shape, text_unit,
// columns) is ftune's, so a value set there, which would be dropped, is
// refused.
func trainInMemory(ctx context.Context, files []memFile, cfg *RunConfig, log io.Writer) (*TrainResult, error) {
	for key, v := range map[string]string{"data.format": cfg.Data.Format, "data.shape": cfg.Data.Shape, "data.text_unit": cfg.Data.TextUnit} {
		if v != "" && v != "auto" {
			return nil, fmt.Errorf("fine-tune: %s is %s: it says how data files are read, and the examples are written by ftune, as JSON lines of its own shape: leave it auto: %w", key, v, ErrInvalidInput)
		}
	}
	if len(cfg.Data.Columns) > 0 {
		return nil, fmt.Errorf("fine-tune: data.columns maps the fields of data files, and the examples are written by ftune, as JSON lines of its own shape: leave it empty: %w", ErrInvalidInput)
	}
	h := sha256.New()
	for _, f := range files {
		h.Write(f.lines)
	}
	out := cfg.Training.Tracking.OutputDir
	if out == "" {
		out = "runs"
	}
	root := filepath.Join(out, "data", "examples-"+hex.EncodeToString(h.Sum(nil))[:12])
	dir := filepath.Join(root, "examples")
	c := cfg.Clone()
	d := &c.Data
	d.Root, d.Files, d.Subjects = root, nil, nil
	d.Format, d.Shape, d.TextUnit = "auto", "auto", "auto" // "" from a RunConfig built in Go
	if len(files) > 1 {
		d.Root = ""
		for _, f := range files {
			d.Files = append(d.Files, filepath.Join(dir, f.name))
		}
	}
	// A config Train would refuse writes no data folder first.
	if err := c.Validate(); err != nil {
		return nil, invalid(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	for _, f := range files {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, f.name), f.lines, 0o644); err != nil {
			return nil, fmt.Errorf("fine-tune: %w", err)
		}
	}
	return Train(ctx, c, log)
}

// EvaluateOptions control Evaluate.
type EvaluateOptions struct {
	// Config gives the model, the data and the evaluation settings. nil:
	// the config.yaml of the run that trained Adapter when it is one of a
	// run folder's outputs (AdapterRunConfig, said in Log), else
	// DefaultConfig.
	Config *RunConfig
	// Adapter is a PEFT adapter folder, or a folder of per-subject
	// adapter folders. Its recorded base is evaluated unless Model is set
	// (which must then be that base: see ResolveBase).
	Adapter string
	Model   string
	// AllRows evaluates every example of data without a validation file
	// (data files), none held out: for test data the adapter never saw.
	// false evaluates the share train holds out of them (data.val_split,
	// data.seed), the rows a run on them did not train on. A subject
	// folder's validation file is evaluated whole either way.
	AllRows bool
	Log     io.Writer // notes; the scores too unless Results is set; nil discards
	Results io.Writer // the scores (nil: Log)
}

// Evaluate measures a base, or base + adapter, on the configured
// subjects: validation loss, perplexity and token accuracy, and the
// held-out questions (exact match, multiple choice). A cancelled ctx stops
// it between two batches or two generated tokens, with an error wrapping
// ctx.Err().
func Evaluate(ctx context.Context, opt EvaluateOptions) (Evaluation, error) {
	if err := checkCtx("evaluate", ctx); err != nil {
		return Evaluation{}, err
	}
	cfg := opt.Config
	if cfg == nil && opt.Adapter != "" {
		run, path, err := AdapterRunConfig(opt.Adapter)
		if errors.Is(err, ErrRunConfigMissing) {
			return Evaluation{}, fmt.Errorf("%w; set EvaluateOptions.Config to name the data", err)
		}
		if err != nil {
			return Evaluation{}, err
		}
		if run != nil {
			cfg = run
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "note: the settings of the run that trained the adapter: %s\n", path)
			}
		}
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	// A deep copy: the model path set below, and anything done to the
	// config on the way, stay out of the caller's (see TrainWith).
	c := cfg.Clone()
	switch {
	case opt.Adapter != "":
		dir, note, err := ResolveBase(opt.Adapter, opt.Model)
		if err != nil {
			return Evaluation{}, err
		}
		if note != "" && opt.Log != nil {
			fmt.Fprintln(opt.Log, "note:", note)
		}
		c.Model.Path = dir
	case opt.Model != "":
		c.Model.Path = opt.Model
	}
	if err := c.Validate(); err != nil {
		return Evaluation{}, invalid(err)
	}
	o, err := recipe.FromConfig(c)
	if err != nil {
		return Evaluation{}, err
	}
	o.Log, o.Results = opt.Log, opt.Results
	o.EvalAllRows = opt.AllRows
	return recipe.Evaluate(ctx, o, opt.Adapter)
}
