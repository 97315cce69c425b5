package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/export/gguf"
)

// imatrixOut is how ftune imatrix treats the file at --out: it replaces
// an earlier importance matrix of ftune's, and no other file (a model
// export included) without --force.
var imatrixOut = export.FileRule{Ours: gguf.Replaceable(gguf.KindImatrix), Prefix: "imatrix", Example: "imatrix.gguf"}

func newImatrixCmd() *cobra.Command {
	var (
		modelName, adapter, text, data, out string
		opt                                 ftune.ImatrixOptions
		force                               bool
	)
	cmd := &cobra.Command{
		Use:   "imatrix",
		Short: "Compute an importance matrix from calibration text, for k-quant GGUF exports",
		Long: `Run the model (with its adapter) over a calibration text and write its
importance matrix: for every projection weight, the mean square of each
input column over the text's tokens. A k-quant GGUF export with
--imatrix then spends its precision on the columns the model drives, as
llama-quantize --imatrix does; it matters most at 2 and 3 bits.

The text is tokenized whole and cut into chunks of --ctx tokens (the last
partial chunk is left out), each starting with BOS when the tokenizer adds
one, as llama.cpp's llama-imatrix does. Use text like what the model will
see: its subject, in its language. --data takes a data file instead (any
shape train --data reads, such as the adapter's own training data): each
conversation is rendered through the model's chat template, as training
renders it, and the renderings are read one after another. Either reads
up to 64 MiB of text (some 16 million tokens; a note says when the rest
was left out); --chunks caps the chunks run, a few hundred of 512 tokens
being the usual. The file is llama.cpp's GGUF imatrix
format, which llama-quantize reads too. An existing file at --out is
replaced only when it is an importance matrix ftune wrote; any other file
(a GGUF model that ftune exported included) is refused before the model
runs, or with --force moved aside (kept, not deleted).

The file written is printed on stdout; notes and progress go to stderr.
It runs on the CPU, in float32, as llama-imatrix sums float32 activations:
on a GPU, bf16 activations moved some columns' sums by up to 13% on
tiny-base.`,
		Example: `  ftune imatrix --adapter runs/x/adapter --text calibration.txt --out imatrix.gguf
  ftune imatrix --adapter runs/x/adapter --data my-train.jsonl --out imatrix.gguf
  ftune export --adapter runs/x/adapter --format gguf --quant q3_k_m --imatrix imatrix.gguf --out model-q3_k_m.gguf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (text == "") == (data == "") {
				return usageError{errors.New("give one of --text (a calibration text file) and --data (a data file, rendered through the chat template)")}
			}
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			if opt.ChunkTokens < 1 {
				return usageError{fmt.Errorf("--ctx %d: want at least 1", opt.ChunkTokens)}
			}
			if opt.MaxChunks < 0 {
				return usageError{fmt.Errorf("--chunks %d: want 0 (all) or more", opt.MaxChunks)}
			}
			// Before the weights load, from the model's config.json; the
			// loaded model is asked again below.
			if positions, ok := modelPositions(modelName, adapter); ok {
				if err := checkChunk(opt.ChunkTokens, positions); err != nil {
					return err
				}
			}
			// What is at --out is checked before the model runs (minutes),
			// and again when the file is written.
			if _, err := export.CheckFile(out, force, imatrixOut); err != nil {
				return err
			}
			var cal ftune.Calibration
			var err error
			if text != "" { // read before the model loads: a wrong path fails at once
				if cal, err = ftune.ReadCalibrationText(text); err != nil {
					return err
				}
				opt.Dataset = text // as llama-imatrix records it
			}
			m, err := loadModel(cmd, modelName, adapter, deviceFlags{}) // the CPU: see the help
			if err != nil {
				return err
			}
			if err := checkChunk(opt.ChunkTokens, m.Net.Config.MaxPositions); err != nil {
				return err
			}
			if data != "" {
				if cal, err = m.CalibrationText(cmd.Context(), data); err != nil {
					return err
				}
				opt.Dataset = data
			}
			// Notes and progress on stderr; stdout is the file written.
			logw := cmd.ErrOrStderr()
			if cal.Cut {
				what := "its first"
				if data != "" {
					what = fmt.Sprintf("its first %d examples,", cal.Examples)
				}
				fmt.Fprintf(logw, "note: %s is longer than ftune imatrix reads; calibrating on %s %.1f MiB of text\n", opt.Dataset, what, float64(len(cal.Text))/(1<<20))
			}
			start := time.Now()
			opt.Progress = func(done, total int) {
				if done == total || done%10 == 0 {
					fmt.Fprintf(logw, "imatrix: %d/%d chunks, %.0f s\n", done, total, time.Since(start).Seconds())
				}
			}
			im, err := m.ImportanceMatrix(cmd.Context(), cal.Text, opt)
			if err != nil {
				return err
			}
			kept, notes, err := export.ReplaceFile(out, force, imatrixOut, func() error { return gguf.WriteImatrix(out, im) })
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(logw, "note:", n)
			}
			if kept != "" {
				fmt.Fprintf(logw, "note: --force: the file that was at %s (not an earlier importance matrix of ftune's) is kept at %s\n", out, kept)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d weights, %d chunks of %d tokens from %s, in %.1f s\n",
				out, len(im.Entries), im.ChunkCount, im.ChunkSize, opt.Dataset, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder (its base is loaded, and the matrix is the merged model's)")
	f.StringVar(&text, "text", "", "calibration text file (UTF-8), read as it is")
	f.StringVar(&data, "data", "", "calibration data file (.jsonl, .json, .csv, .parquet, .txt as train --data reads them), each example rendered through the model's chat template")
	f.StringVar(&out, "out", "imatrix.gguf", "output file (llama.cpp's GGUF imatrix format)")
	f.IntVar(&opt.ChunkTokens, "ctx", ftune.DefaultImatrixChunk, "tokens per chunk")
	f.IntVar(&opt.MaxChunks, "chunks", 0, "at most this many chunks (0: all)")
	f.BoolVar(&force, "force", false, "replace an existing file other than an importance matrix ftune wrote: it is moved aside, not deleted")
	return cmd
}

// checkChunk refuses --ctx chunks longer than the model's positions.
func checkChunk(tokens, positions int) error {
	if tokens > positions {
		return usageError{fmt.Errorf("--ctx %d: want at most the model's %d positions (max_position_embeddings)", tokens, positions)}
	}
	return nil
}

// modelPositions is the position limit of the model that --model and
// --adapter load, read from its config.json before the weights; ok is
// false when it cannot be read (loading the model then says why).
func modelPositions(model, adapter string) (positions int, ok bool) {
	_, cfg, err := modelConfig(model, adapter)
	if err != nil {
		return 0, false
	}
	return cfg.MaxPositions, true
}
