package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/internal/shell"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/train"
)

// trainFlags are the command-line shortcuts for common config keys.
type trainFlags struct {
	configPath string
	sets       []string
	noProgress bool
	memoryLean bool
	perSubject bool
	skipBad    bool
	resume     string
	nproc      int // --nproc-per-node
}

// shortcut maps a flag to its config key. kind is what help shows as the
// value's type (int, float, duration, list, string, path); the value is
// applied through config.ApplyFlag, so that errors name the flag. A path
// flag for a list key (data.files) is repeatable.
type shortcut struct{ flag, path, kind, usage string }

var shortcuts = []shortcut{
	{"model", "model.path", "string", "base model: a Hugging Face folder or tiny-base (embedded)"},
	{"data", "data.files", "path", "your own data: a file (.jsonl, .json, .csv, .parquet, .txt, .md), a folder of such files, or a glob (repeatable; default: the bundled subject datasets)"},
	{"data-root", "data.root", "string", "subject data root: one file or folder per subject"},
	{"init-from", "training.lora.init_from", "string", "continue this PEFT adapter folder (e.g. runs/<run>/adapter) instead of a new adapter; under objective dpo or kto also the frozen reference"},
	{"subjects", "data.subjects", "list", "subjects to train on, e.g. geography,chemistry (default: all)"},
	{"max-steps", "training.max_steps", "int", "optimizer steps"},
	{"output", "training.tracking.output_dir", "string", "folder of run folders ($VARS expand)"},
	{"run-name", "training.tracking.run_name", "string", "run folder name (default: the start time)"},
	{"device", "training.device", "string", "auto, cpu, cuda or cuda:N"},
	{"precision", "training.precision", "string", "auto (bf16 on a GPU: bf16 weights, activations and tensor-core products, float32 masters and loss; f32 on the CPU), bf16 (on the CPU: products of bf16-rounded operands on AVX512_BF16 or arm64's BF16, float32 activations) or f32 (the parity path)"},
	{"attention-kernel", "training.attention_kernel", "string", "GPU attention: auto (flash in bf16 precision where it takes the head size and the scores are not soft-capped, else the SIMT kernels), flash (tensor cores, bf16; head sizes multiples of 16 up to 128, and 256) or simt"},
	{"gemm-provider", "training.gemm_provider", "string", "GPU matrix products: auto (per shape the faster of ftune's kernels and cuBLASLt, measured once), ftune or cublaslt"},
	{"max-device-memory", "training.max_device_memory", "float", "cap on GPU memory in GiB (0: none): the run plans for it and never reserves more"},
	{"lr", "training.optimizer.lr", "float", "peak learning rate"},
	{"batch-size", "training.batch_size", "int", "rows per micro-batch"},
	{"seq-len", "data.max_length", "int", "row length in tokens"},
	{"eval-questions", "training.eval.generation.questions", "int", "held-out questions per subject (0: none, and no sample answers)"},
	{"eval-every", "training.eval.every", "int", "validate every N steps (0: at epoch ends)"},
	{"seed", "training.seed", "int", "seed of initialisation, dropout and data order"},
	{"max-time", "training.max_time", "duration", "stop with a checkpoint after this long, e.g. 10m"},
	{"token-cache", "data.token_cache", "string", "folder of token caches, as \"ftune data prepare\" writes them (built when missing or stale)"},
}

// shortcutValue is a shortcut flag's value: the text as typed (checked by
// config.ApplyFlag against the key's type), with the type help shows.
// A repeated flag adds one entry per use.
type shortcutValue struct {
	kind   string
	repeat bool
	args   []string
}

func (v *shortcutValue) String() string { return strings.Join(v.args, " ") }
func (v *shortcutValue) Type() string   { return v.kind }

func (v *shortcutValue) Set(s string) error {
	if v.repeat {
		v.args = append(v.args, s)
	} else {
		v.args = []string{s}
	}
	return nil
}

// yaml is the value as the config key reads it: a flow list for a
// repeated flag (each entry quoted) and for a comma-separated "list".
func (v *shortcutValue) yaml() string {
	switch {
	case v.repeat:
		q := make([]string, len(v.args))
		for i, a := range v.args {
			q[i] = strconv.Quote(a)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case v.kind == "list" && !strings.HasPrefix(strings.TrimSpace(v.String()), "["):
		return "[" + v.String() + "]"
	}
	return v.String()
}

func newTrainCmd() *cobra.Command {
	var tf trainFlags
	values := map[string]*shortcutValue{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a model with LoRA (no flags: tiny-base on the bundled subject datasets)",
		Long: `Fine-tune a base model with LoRA adapters on your own data (--data: files,
folders or globs) or on subject datasets (--data-root), evaluate before
and after (validation loss, exact match and multiple choice on held-out
questions), write a run folder (config.yaml, metrics.jsonl, TensorBoard events,
manifest, checkpoints, report.html) and export the adapter in PEFT format.

With no flags it fine-tunes the embedded tiny-base model on the bundled
geography, chemistry and US-history datasets on the CPU. A YAML file (-c,
see "ftune init") sets everything; --set overrides any key; the flags below
are shortcuts for the common ones.`,
		Example: `  ftune train
  ftune train --data my.jsonl --data more/*.csv
  ftune train --max-steps 20 --output /tmp/runs
  ftune train -c run.yaml --set training.optimizer.lr=1e-3 --set training.lora.r=8
  ftune train --subjects '[chemistry]'
  ftune train --subjects '[geography,chemistry]' --per-subject
  ftune train --memory-lean            # NF4 base + gradient checkpointing
  ftune train --resume runs/20261126-114016   # continue after Ctrl-C or a crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := tf.config(cmd, values)
			if err != nil {
				return err
			}
			if _, err := recipe.FromConfig(cfg); err != nil {
				return err
			}
			if tf.nproc != 1 {
				// The configuration is checked once, here, before N workers
				// start under mpirun with the same arguments.
				return relaunch(tf.nproc)
			}
			comm, launch, err := dist.FromEnv()
			if err != nil {
				return err
			}
			// On --resume, TrainWith refuses what the run may not change
			// since it started (config.yaml edited by hand included), and
			// prints and records in config.yaml the changes it may.
			w := cmd.OutOrStdout()
			f, isFile := w.(*os.File)
			progress := !tf.noProgress && isFile && term.IsTerminal(int(f.Fd()))
			if progress && comm.Size() > 1 {
				// An MPI launcher gives ranks a terminal of its own and
				// forwards what they write line by line: a redrawn bar
				// reached a pipe.
				progress = false
				if comm.Rank() == 0 {
					fmt.Fprintf(w, "note: %d data-parallel workers: plain log lines, no progress bar (the launcher forwards the workers' output line by line)\n", comm.Size())
				}
			}
			res, err := ftune.TrainWith(cmd.Context(), cfg, ftune.TrainOptions{
				Log: w, Progress: progress,
				Resume: tf.resume,
				Comm:   comm, LocalRank: launch.LocalRank, WorkerLog: cmd.ErrOrStderr(),
				PaceCollector: true,
				ResumeHint:    func(dir string) string { return shell.Command(shell.Program(), "train", "--resume", dir) },
			})
			if err != nil {
				// A subject named on the command line that the data lacks
				// is bad usage, as eval has it.
				if given := subjectsGiven(cmd.Flags(), values["subjects"], tf.sets); given != "" && comm.Size() == 1 && errors.Is(err, recipe.ErrUnknownSubject) {
					comm.Close()
					return usageError{fmt.Errorf("%s: %w", given, err)}
				}
				return workerFailed(comm, launch.Launcher, err)
			}
			// Finalising waits for every worker, as the end of a run
			// does: they all got here.
			defer comm.Close()
			if comm.Rank() != 0 {
				return nil // rank 0 reports the run and writes its folder
			}
			switch {
			case res.Stopped == ftune.StoppedInterrupted:
				fmt.Fprintf(w, "\ninterrupted after %d steps (%s)", res.Steps, res.Duration.Round(time.Second))
			case res.Stopped != "":
				fmt.Fprintf(w, "\nfinished %d steps in %s (stopped: %s)", res.Steps, res.Duration.Round(time.Second), res.Stopped)
			default:
				fmt.Fprintf(w, "\nfinished %d steps in %s", res.Steps, res.Duration.Round(time.Second))
			}
			fmt.Fprintf(w, "\nrun folder: %s\n", res.RunDir)
			writeReport(w, res.RunDir)
			for _, name := range slices.Sorted(maps.Keys(res.Adapters)) {
				fmt.Fprintf(w, "adapter %s: %s\n", name, res.Adapters[name])
			}
			if hint := tryIt(res); hint != "" {
				fmt.Fprintf(w, "try it:     %s\n", hint)
			}
			if res.Stopped == ftune.StoppedInterrupted && comm.Size() == 1 {
				// Saved and resumable, but not done: 0 would let a
				// script's `ftune train && ftune export ...` go on after
				// the user's Ctrl-C. A data-parallel job's workers exit 0
				// after finalising together: a worker's other status
				// makes the launcher report it failed.
				return exitStatus(exitInterrupted)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&tf.configPath, "config", "c", "", "YAML run configuration (see ftune init)")
	f.StringArrayVar(&tf.sets, "set", nil, "override one config key, e.g. training.optimizer.lr=2e-4 (repeatable)")
	for _, s := range shortcuts {
		values[s.flag] = &shortcutValue{kind: s.kind, repeat: s.path == "data.files"}
		f.Var(values[s.flag], s.flag, s.usage+" ("+s.path+")")
	}
	f.BoolVar(&tf.memoryLean, "memory-lean", false, "NF4 base weights and gradient checkpointing")
	f.BoolVar(&tf.skipBad, "skip-bad", false, "count and skip malformed data records instead of failing (data.skip_bad)")
	f.BoolVar(&tf.perSubject, "per-subject", false, "one adapter per subject, routed per row (training.adapters=per-subject)")
	f.IntVar(&tf.nproc, dist.NprocFlag, 1, "data-parallel workers on this machine, started through mpirun (the batch is the global batch)")
	f.BoolVar(&tf.noProgress, "no-progress", false, "plain log lines even on a terminal")
	f.StringVar(&tf.resume, "resume", "", "continue the run in this folder from its newest usable checkpoint (after a crash or Ctrl-C)")
	return cmd
}

// config assembles the run's configuration: the run file (-c), or the
// run's own config.yaml when resuming, then --set, then the shortcut flags,
// validated. When resuming, a flag or --set may change only the
// ftune.ResumeSafe keys of the run's config.yaml (refused here, naming the
// flag); ftune.TrainWith then checks the result against the config the
// run started with, which catches a config.yaml edited by hand.
func (tf *trainFlags) config(cmd *cobra.Command, values map[string]*shortcutValue) (*config.RunConfig, error) {
	var base *config.RunConfig
	if tf.resume != "" {
		dir, err := resumeFolder(tf.resume)
		if err != nil {
			return nil, err
		}
		tf.resume = dir
		// Its relative paths are the folder it started in's, wherever the
		// resume runs.
		if base, err = ftune.LoadRunConfig(dir); err != nil {
			return nil, fmt.Errorf("--resume %s: %w", dir, err)
		}
	}
	cfg := config.Default()
	switch {
	case tf.configPath != "":
		var err error
		if cfg, err = config.Load(tf.configPath); err != nil {
			return nil, err
		}
	case base != nil:
		cfg = base.Clone()
	}
	if err := config.Apply(cfg, tf.sets); err != nil {
		return nil, err
	}
	for _, s := range shortcuts {
		if f := cmd.Flags().Lookup(s.flag); f != nil && f.Changed {
			if err := config.ApplyFlag(cfg, "--"+s.flag, s.path, values[s.flag].yaml()); err != nil {
				return nil, err
			}
		}
	}
	if tf.memoryLean {
		for _, p := range []string{"model.load_in_4bit", "training.gradient_checkpointing"} {
			if err := config.ApplyFlag(cfg, "--memory-lean", p, "true"); err != nil {
				return nil, err
			}
		}
	}
	if tf.skipBad {
		if err := config.ApplyFlag(cfg, "--skip-bad", "data.skip_bad", "true"); err != nil {
			return nil, err
		}
	}
	if tf.perSubject {
		if err := config.ApplyFlag(cfg, "--per-subject", "training.adapters", "per-subject"); err != nil {
			return nil, err
		}
	}
	if base != nil {
		if err := refuseResumeChanges(tf.resume, cfg, config.Diff(base, cfg)); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// tryIt is a command that asks the trained adapter a question held out
// from the run's own data (the base is the one the adapter records), as
// this program was invoked; "" when the run exported no adapter.
func tryIt(r *recipe.Result) string {
	if len(r.Adapters) == 0 {
		return ""
	}
	name := slices.Sorted(maps.Keys(r.Adapters))[0]
	args := []string{"generate", "--adapter", r.Adapters[name]}
	for _, ev := range []recipe.Evaluation{r.After, r.Before} {
		if ev.QA == nil {
			continue
		}
		// A per-subject adapter is asked a question of its own subject.
		for _, q := range ev.QA.Results {
			if len(r.Adapters) == 1 || q.Subject == name {
				return shell.Command(shell.Program(), append(args, "--prompt", q.Question)...)
			}
		}
	}
	return shell.Command(shell.Program(), args...) // no held-out question: an interactive chat
}

// resumeFolder checks that dir is a run folder, and points a checkpoint
// folder (RUN/checkpoints/step-…) or RUN/checkpoints at its run.
func resumeFolder(dir string) (string, error) {
	clean := filepath.Clean(dir)
	run := ""
	switch {
	case filepath.Base(clean) == "checkpoints":
		run = filepath.Dir(clean)
	case filepath.Base(filepath.Dir(clean)) == "checkpoints":
		run = filepath.Dir(filepath.Dir(clean))
	}
	if run != "" {
		return "", fmt.Errorf("--resume %s: this is a checkpoint folder; --resume takes the run folder, which resumes from its newest usable checkpoint: %s", dir, shell.Command(shell.Program(), "train", "--resume", run))
	}
	if _, err := os.Stat(filepath.Join(clean, "config.yaml")); err != nil {
		return "", fmt.Errorf("--resume %s: not a run folder (no config.yaml): %w", dir, err)
	}
	return clean, nil
}

// refuseResumeChanges names every change that is not ftune.ResumeSafe,
// with the flag or --set that made it (ftune.TrainWith refuses them too,
// but cannot name the flag, and here they are refused before a
// --nproc-per-node relaunch).
func refuseResumeChanges(dir string, cfg *config.RunConfig, changes []config.Change) error {
	var bad []string
	for _, c := range changes {
		if !slices.Contains(ftune.ResumeSafe, c.Path) {
			bad = append(bad, fmt.Sprintf("  %s (%s)", c, cfg.Where(c.Path)))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("--resume %s: these settings differ from the run's config.yaml and would change its optimisation:\n%s\na resumed run may change only %s; start a new run for the others",
		dir, strings.Join(bad, "\n"), strings.Join(ftune.ResumeSafe, ", "))
}

// relaunch runs this command again as n data-parallel workers under
// mpirun, and exits with the job's status.
func relaunch(n int) error {
	c, err := dist.Relaunch(n, os.Args[1:])
	if err != nil {
		return err
	}
	err = c.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode()) // the workers said why
	}
	return err
}

// abortGrace is how long a failed worker waits between printing its
// error and aborting the job.
const abortGrace = 200 * time.Millisecond

// workerFailed is a worker's error. Alone, it closes the comm (nothing
// to wait for). In a job of several workers it is a workerError, which
// execute prints with the rank:
//
//   - workers that differ (train.ErrWorkersDiffer) all return the same
//     error after the same collectives: rank 0 alone prints it, and they
//     finalise together (after the print: Open MPI's mpirun ends the
//     job as soon as one worker exits non-zero);
//   - a worker that a signal stopped (the launcher's, as it ends the job:
//     the user stopped it, or another worker failed or died) exits with
//     its status under Open MPI's and MPICH's mpirun, which end a job
//     whose worker exits without finalising (a kill by hand of this
//     worker alone included): its abort would add nothing but a report
//     that it aborted the job ("MPI_ABORT was invoked on rank 0 ...
//     errorcode 130", where rank 1 had failed and aborted it). Under
//     other launchers (srun ends a step on a task's bad exit only with
//     --kill-on-bad-exit) it aborts, as below;
//   - any other error may be this worker's alone, while the others wait
//     in a collective for it (or have failed the same way): execute
//     prints it, then aborts the job (MPI_Abort), where finalising would
//     wait for them (until FTUNE_DIST_TIMEOUT) and print nothing. A
//     collective that failed or timed out has poisoned the comm already;
//     the abort is also what ends the hung worker then.
func workerFailed(comm dist.Comm, launcher string, err error) error {
	switch {
	case comm.Size() == 1:
		comm.Close()
		return err
	case errors.Is(err, train.ErrWorkersDiffer):
		return workerError{error: err, rank: comm.Rank(), quiet: comm.Rank() != 0, end: func(int, bool) { comm.Close() }}
	}
	return workerError{error: err, rank: comm.Rank(), end: func(code int, signalled bool) {
		if signalled && (launcher == "openmpi" || launcher == "hydra") { // dist/launch.go's names
			return // main exits with code
		}
		// mpirun ends the job's other processes with SIGTERM, this one
		// too should it not exit first: that is not a Ctrl-C to stop at
		// a step boundary, and must not say "stopping cleanly".
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		// The launcher forwards this worker's output from a pipe; an
		// abort at once may end the forwarding before it has read the
		// error line (MPICH's hydra lost it once in about ten runs).
		time.Sleep(abortGrace)
		dist.Abort(comm, code)
	}}
}
