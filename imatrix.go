package ftune

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/export/imatrix"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/recipe"
)

// DefaultImatrixChunk is the tokens per chunk of ImportanceMatrix by
// default: llama-imatrix's default context.
const DefaultImatrixChunk = 512

// ImatrixOptions control ImportanceMatrix.
type ImatrixOptions struct {
	// ChunkTokens is the length of each chunk the text is cut into (0:
	// DefaultImatrixChunk); MaxChunks caps how many are run (0: every
	// whole chunk of the text).
	ChunkTokens, MaxChunks int
	// Dataset names the text in the matrix (imatrix.datasets), e.g. its
	// file name.
	Dataset string
	// Progress, when set, is called after each chunk.
	Progress func(done, total int)
}

// ImportanceMatrix runs the model, with its adapter, over calibration text
// and returns its importance matrix, as llama.cpp's llama-imatrix computes
// one from a model file: the text is tokenized whole, cut into chunks of
// ChunkTokens (the last partial one left out), each chunk starting with
// BOS when the tokenizer adds one. gguf.WriteImatrix saves it in
// llama.cpp's format; ExportOptions.Imatrix then weighs a k-quant GGUF
// export by it, and llama-quantize --imatrix reads it too. ctx stops it
// between chunks.
func (m *Model) ImportanceMatrix(ctx context.Context, text string, opt ImatrixOptions) (*gguf.Imatrix, error) {
	if err := m.ready("imatrix"); err != nil {
		return nil, err
	}
	if err := checkCtx("imatrix", ctx); err != nil {
		return nil, err
	}
	size := opt.ChunkTokens
	if size == 0 {
		size = DefaultImatrixChunk
	}
	if size < 1 || size > m.Net.Config.MaxPositions {
		return nil, fmt.Errorf("imatrix: chunks of %d tokens: want 1 to the model's %d positions", size, m.Net.Config.MaxPositions)
	}
	if opt.MaxChunks < 0 {
		return nil, fmt.Errorf("imatrix: %d chunks", opt.MaxChunks)
	}
	enc, err := m.Tokenizer.Encode(text, true)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	bos, err := gguf.AddedBOS(m.Tokenizer, m.Net.Config)
	if err != nil {
		return nil, err
	}
	chunks, err := imatrix.Chunks(enc.IDs, size, bos, opt.MaxChunks)
	if err != nil {
		return nil, err
	}
	return imatrix.Collect(ctx, m.Net, chunks, imatrix.Options{Dataset: opt.Dataset, Progress: opt.Progress})
}

// MaxCalibrationBytes bounds the calibration text CalibrationText renders
// and ReadCalibrationText reads (64 MiB, some 16 million tokens: far more
// than the 100 thousand to a million tokens an importance matrix is
// usually computed on, and a day of chunks on a CPU).
const MaxCalibrationBytes = 64 << 20

// calibrationLimit is MaxCalibrationBytes, a variable so that a test can
// cut a small text.
var calibrationLimit = MaxCalibrationBytes

// Calibration is calibration text and where it came from.
type Calibration struct {
	Text string
	// Examples is how many examples of a data file the text holds
	// (CalibrationText); Cut reports that the source went on past
	// MaxCalibrationBytes and the rest was left out.
	Examples int
	Cut      bool
}

// CalibrationText renders a data file (any shape `ftune train --data`
// reads: chat, alpaca, ShareGPT, prompt/completion, plain text) as the
// model reads it in training: each conversation through the model's chat
// template, whole, each text as it is, one after another, up to
// MaxCalibrationBytes (the examples past it are not read; Cut says so).
// It is the text to give ImportanceMatrix to calibrate on the data the
// adapter was trained on, or on data like the model will see.
func (m *Model) CalibrationText(ctx context.Context, path string) (Calibration, error) {
	if err := m.ready("imatrix"); err != nil {
		return Calibration{}, err
	}
	if err := checkCtx("imatrix", ctx); err != nil {
		return Calibration{}, err
	}
	r, err := format.Open(path, format.Options{})
	if err != nil {
		return Calibration{}, fmt.Errorf("imatrix: %w", err)
	}
	defer r.Close()
	var b strings.Builder
	var c Calibration
	for {
		if err := ctx.Err(); err != nil {
			return Calibration{}, fmt.Errorf("imatrix: %s: %w", path, err)
		}
		ex, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Calibration{}, fmt.Errorf("imatrix: %w", err)
		}
		if ex.IsPreference() {
			// Calibrate on what the model should write: the prompt
			// with its chosen completion (an unpaired record's one
			// completion, desirable or not: its activations are the
			// model's all the same).
			ex = ex.Completed(cmp.Or(ex.Chosen, ex.Rejected))
		}
		text := ex.Text
		if ex.IsChat() {
			if text, err = m.Template.RenderWith(ctx, recipe.ChatMessages(ex.Messages), chat.RenderOptions{Tools: ex.Tools}); err != nil {
				return Calibration{}, fmt.Errorf("imatrix: %s: %w", ex.Source, err)
			}
		}
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if b.Len()+len(text) > calibrationLimit {
			c.Cut = true
			break
		}
		b.WriteString(text)
		c.Examples++
	}
	if c.Examples == 0 {
		if c.Cut {
			return Calibration{}, fmt.Errorf("imatrix: %s: its first example renders to more than the %d bytes of text ftune imatrix reads", path, calibrationLimit)
		}
		return Calibration{}, fmt.Errorf("imatrix: %s holds no examples", path)
	}
	c.Text = b.String()
	return c, nil
}

// ReadCalibrationText reads a text file for ImportanceMatrix: whole, or
// its first MaxCalibrationBytes, cut after the last newline within them
// (Cut says so).
func ReadCalibrationText(path string) (Calibration, error) {
	// A regular file: a named pipe nobody writes would block the open,
	// where no cancellation reaches.
	f, _, err := fsutil.OpenRegular(path)
	if err != nil {
		return Calibration{}, fmt.Errorf("imatrix: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, int64(calibrationLimit)+1))
	if err != nil {
		return Calibration{}, fmt.Errorf("imatrix: %s: %w", path, err)
	}
	c := Calibration{Cut: len(body) > calibrationLimit}
	if c.Cut {
		body = body[:calibrationLimit]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			body = body[:i+1]
		}
	}
	c.Text = string(body)
	return c, nil
}
