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
	"syscall"

	"github.com/spf13/cobra"

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
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(), newEnvCmd(), newGenerateCmd(), newTrainCmd(), newDataCmd(), newInitCmd(), newRunsCmd(), newEvalCmd(), newExportCmd(), newImatrixCmd())
	return root
}

// goMemoryLimit describes the soft memory limit main set (ftune env).
var goMemoryLimit = "not set"

func main() {
	goMemoryLimit = setMemoryLimit()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(sigs, cancel, os.Stderr, os.Exit)
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ftune:", oneLine(err))
		os.Exit(exitCode(ctx, err))
	}
}

// exitInterrupted is the status of a process ended by a second Ctrl-C
// (128 + SIGINT, as shells report it), and of a command that stopped on
// the first one with an error (an evaluation or export cut short).
const exitInterrupted = 130

// exitCode is the status for a command's error: 2 for bad usage, 130 for
// work stopped by Ctrl-C or SIGTERM (ctx cancelled by onSignals), else 1.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
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
func onSignals(sigs <-chan os.Signal, cancel func(), stderr io.Writer, exit func(int)) {
	<-sigs
	fmt.Fprintln(stderr, "\nftune: stopping cleanly (press Ctrl-C again to quit at once)")
	cancel()
	<-sigs
	fmt.Fprintln(stderr, "ftune: interrupted twice: quitting now (work since the last checkpoint is lost)")
	exit(exitInterrupted)
}

// usageError marks bad flags or arguments (exit code 2).
type usageError struct{ error }

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
