package ftune

import (
	"context"
	"fmt"
	"strings"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/export/imatrix"
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

// CalibrationText renders a data file (any shape `ftune train --data`
// reads: chat, alpaca, ShareGPT, prompt/completion, plain text) as the
// model reads it in training: each conversation through the model's chat
// template, whole, each text as it is, one after another. It is the text
// to give ImportanceMatrix to calibrate on the data the adapter was
// trained on, or on data like the model will see.
func (m *Model) CalibrationText(ctx context.Context, path string) (string, error) {
	exs, _, err := format.ReadAllContext(ctx, path, format.Options{})
	if err != nil {
		return "", fmt.Errorf("imatrix: %w", err)
	}
	if len(exs) == 0 {
		return "", fmt.Errorf("imatrix: %s holds no examples", path)
	}
	var b strings.Builder
	for _, ex := range exs {
		text := ex.Text
		if ex.IsChat() {
			msgs := make([]chat.Message, len(ex.Messages))
			for i, msg := range ex.Messages {
				msgs[i] = chat.Message{Role: msg.Role, Content: msg.Content, ReasoningContent: msg.ReasoningContent}
			}
			if text, err = m.Template.RenderContext(ctx, msgs, false); err != nil {
				return "", fmt.Errorf("imatrix: %s: %w", ex.Source, err)
			}
		}
		b.WriteString(text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}
