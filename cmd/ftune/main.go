// Command ftune fine-tunes Llama-family models: train, eval, generate,
// export, runs, data, init, env and version. With no configuration,
// `ftune train` fine-tunes the embedded tiny-base model on the bundled
// subject datasets.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/dist"

	// Parquet datasets, for every command that reads data (train, data,
	// eval): data/format links no parquet reader of its own, so programs
	// that embed ftune only to generate do not carry one.
	_ "github.com/ftune/ftune/data/format/parquet"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "ftune",
		Short: "Fine-tune Llama-family language models (LoRA, QLoRA) on CPU or NVIDIA GPU",
		Long: `ftune fine-tunes Llama-family models (Llama 2/3, Mistral, Qwen2, Qwen3, Gemma 2 and 3,
Phi-3 and Phi-4-mini, SmolLM2, SmolLM3, Granite 3, TinyLlama) from Hugging Face folders with LoRA adapters, on the CPU or an
NVIDIA GPU, from one static binary.

Run "ftune train" with no arguments to fine-tune the embedded tiny-base model
on the bundled subject datasets.`,
		Example: `  ftune train                                   # tiny-base on the bundled subjects
  ftune train --data my.jsonl --model ./Qwen2.5-0.5B
  ftune generate --adapter runs/<run>/adapter   # chat with the result
  ftune help train                              # every command's flags and examples`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(), newEnvCmd(), newGenerateCmd(), newTrainCmd(), newDataCmd(), newInitCmd(), newRunsCmd(), newEvalCmd(), newExportCmd(), newImatrixCmd())
	// cobra adds its completion command when it runs; added here, its
	// unknown subcommands are usage errors too.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	helpTopicsAreCommands(root)
	parserErrorsAreUsage(root)
	return root
}

// helpTopicsAreCommands makes "ftune help X" a usage error when X is not a
// command: cobra's help command prints "Unknown help topic" and the root's
// usage, and exits 0, so a script asking for help on a command the binary
// lacks (an older ftune) could not tell.
func helpTopicsAreCommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		c.RunE = func(help *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q (see %s --help)", strings.Join(args, " "), root.CommandPath())}
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		}
	}
}

// parserErrorsAreUsage makes the mistakes cobra and pflag catch on the
// command line usage errors (exit 2), as ftune's own checks are: a flag
// the command does not have or a value that does not parse (the flag error
// function, which every subcommand inherits from the root), too many or
// too few arguments (each command's Args), and a command that does not
// exist. cobra reports an unknown command only at the root, and as a plain
// error; below it (ftune runs bogus) it would print the parent's help and
// exit 0. So a command that only groups others takes no arguments but the
// name of one of them, and with none prints its help.
func parserErrorsAreUsage(root *cobra.Command) {
	// (pflag's ErrHelp never comes here: cobra defines -h and --help on
	// every command before it parses the flags.)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = unknownCommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		case c.Args != nil:
			check := c.Args
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					return usageError{fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// Runnable only to answer an unknown command, a group keeps the usage
	// line it had: "ftune runs [command]", not also "ftune runs [flags]".
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}\n  {{.UseLine}}{{end}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}\n  {{.UseLine}}{{end}}", 1))
}

// unknownCommand is the Args of a command that groups others: any
// argument is a command it does not have.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default
	}
	hint := ""
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		hint = "did you mean " + strings.Join(s, " or ") + "? "
	}
	return usageError{fmt.Errorf("unknown command %q for %q (%ssee %s --help)", args[0], c.CommandPath(), hint, c.CommandPath())}
}

// goMemoryLimit describes the soft memory limit main set (ftune env).
var goMemoryLimit = "not set"

func main() {
	goMemoryLimit = setMemoryLimit()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(sigs, cancel, os.Stderr, os.Exit, workerOf(os.Getenv))
	if code := execute(ctx, newRoot(), os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// execute runs a command line (root, with its arguments set) and returns
// the process's exit status, having printed its error on one line.
func execute(ctx context.Context, root *cobra.Command, stderr io.Writer) int {
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status) // the command has said why
	}
	var worker workerError
	if errors.As(err, &worker) {
		// Printed before the job ends, which may end this process too.
		code := exitCode(ctx, err)
		if !worker.quiet {
			fmt.Fprintf(stderr, "ftune: [rank %d] %s\n", worker.rank, oneLine(err))
		}
		worker.end(code, ctx.Err() != nil)
		return code
	}
	// Several problems of a run file (another trainer's config gives
	// dozens) are a line each, each naming its file:line.
	var problems config.ErrorList
	if errors.As(err, &problems) && len(problems) > 1 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "ftune:", oneLine(p))
		}
		return exitCode(ctx, err)
	}
	fmt.Fprintln(stderr, "ftune:", oneLine(err))
	return exitCode(ctx, err)
}

// workerError is the error of one worker of a data-parallel job
// (workerFailed): execute prints it prefixed with the worker's rank, so
// that the workers' interleaved lines say whose it is, unless quiet
// (another worker prints the same error), then calls end, which ends
// this worker's part of the job: finalising with the others, or aborting
// them all; signalled says a signal (the launcher's) stopped the command.
type workerError struct {
	error
	rank  int
	quiet bool
	end   func(code int, signalled bool)
}

func (e workerError) Unwrap() error { return e.error }

// exitStatus is the error of a command that has printed what happened
// and ends with this status, without an error line.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitInterrupted is the status of a process ended by a second Ctrl-C
// (128 + SIGINT, as shells report it), and of a command that stopped on
// the first one with an error (an evaluation or export cut short).
const exitInterrupted = 130

// exitCode is the status for a command's error: 2 for bad usage (a
// usageError, or configuration errors that all name a flag or a --set),
// 130 for work stopped by Ctrl-C or SIGTERM (ctx cancelled by onSignals),
// else 1.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), fromCommandLine(err):
		return 2
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return 1
}

// onSignals turns the first SIGINT/SIGTERM into a cancelled context (the
// command stops cleanly: training saves a checkpoint of its last step),
// and a second one into an immediate exit, for when stopping cleanly takes
// too long.
//
// A worker of a data-parallel job of several (w.several) says otherwise:
// Open MPI's and MPICH's mpirun start each worker in a process group of
// its own, so a Ctrl-C at the terminal reaches mpirun, not the worker, and
// the worker's signal is (but for a kill by hand) the launcher's way of
// ending the job, whether the user stopped it (Open MPI's mpirun sends
// SIGTERM, MPICH's SIGINT) or another worker failed (MPI_Abort) or died.
// Neither a clean stop (the others may be gone) nor a second Ctrl-C to
// this process is the worker's to promise, so its line names the signal
// and both causes, with its rank. The work stops as for a Ctrl-C: after
// the user's stop, training still saves its checkpoint and says so.
func onSignals(sigs <-chan os.Signal, cancel func(), stderr io.Writer, exit func(int), w jobWorker) {
	s := <-sigs
	if w.several {
		fmt.Fprintf(stderr, "\nftune: [rank %d] %s: this worker stops (a launcher sends it to end the job when it was stopped, or when another worker failed or died)\n", w.rank, signalName(s))
	} else {
		fmt.Fprintln(stderr, "\nftune: stopping cleanly (press Ctrl-C again to quit at once)")
	}
	cancel()
	first := time.Now()
	for s = <-sigs; time.Since(first) < oneStopWindow; s = <-sigs {
		// The same stop delivered twice: GNU timeout, and other tools
		// that stop a command, signal it and then its process group.
	}
	if w.several {
		fmt.Fprintf(stderr, "ftune: [rank %d] %s again: quitting now (work since the last checkpoint is lost)\n", w.rank, signalName(s))
	} else {
		fmt.Fprintln(stderr, "ftune: interrupted twice: quitting now (work since the last checkpoint is lost)")
	}
	exit(exitInterrupted)
}

// oneStopWindow is how soon after the first a signal is taken for the
// same stop sent twice (to the process, then to its group) rather than a
// second Ctrl-C, which a person cannot press within it: `timeout -s INT`
// cost a run its last checkpoint 2 times in 9.
const oneStopWindow = 250 * time.Millisecond

// jobWorker is what onSignals knows of the process: several is set for a
// worker, of the given rank, of a job of several that a launcher started
// (or of a size the launcher does not say).
type jobWorker struct {
	several bool
	rank    int
}

// workerOf reads the launcher's variables (dist.Detect) through getenv.
func workerOf(getenv func(string) string) jobWorker {
	l, err := dist.Detect(getenv)
	if err != nil || l.Launcher == "" || l.Size == 1 {
		return jobWorker{}
	}
	return jobWorker{several: true, rank: l.Rank}
}

// signalName is a signal's name as kill -l and the launchers' messages
// spell it.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// usageError marks bad flags or arguments (exit code 2).
type usageError struct{ error }

// fromCommandLine reports whether err holds configuration errors (the
// config package's, as config.ApplyFlag and Validate return them) and each
// was written on the command line: its source is a flag ("--seq-len 5")
// or a --set, not a run file. Such a value is bad usage as much as a flag
// that does not parse; one from a run file is not.
func fromCommandLine(err error) bool {
	var list config.ErrorList
	var one *config.FieldError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			if !strings.HasPrefix(e.Where, "--") {
				return false
			}
		}
		return len(list) > 0
	case errors.As(err, &one):
		return strings.HasPrefix(one.Where, "--")
	}
	return false
}

// oneLine keeps an error message on a single line.
func oneLine(err error) string {
	s := err.Error()
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
