// Package imatrix computes importance matrices: it runs a model over
// calibration text and sums, for every projection weight, the square of
// each input column over the tokens, as llama.cpp's llama-imatrix does.
// The result (a gguf.Imatrix, keyed by llama.cpp's tensor names) is what
// llama-quantize --imatrix and ftune's GGUF export (gguf.Options.Importance)
// weigh the quantization error by, so that the columns the model actually
// drives keep their precision at 2 to 4 bits.
//
// The sums are the inputs of the projections of every block (q, k, v, o,
// gate, up, down, or Phi-3's fused qkv and gate_up); like llama-imatrix by
// default, not of the LM head, and the embeddings are a lookup, not a
// product. With an adapter attached, the inputs are those of the merged
// model (a LoRA adds to a projection's output, and the next projection
// reads the sum), which is the model a GGUF export quantizes.
package imatrix

import (
	"context"
	"errors"
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Chunks splits tokens into whole chunks of size tokens, at most max of
// them (0: all), the last partial chunk left out, as llama-imatrix splits
// its input. When bos >= 0 each chunk starts with it in place of its first
// token, as llama-imatrix does for a vocabulary that adds one: every chunk
// is then read as the start of a document.
func Chunks(tokens []int, size, bos, max int) ([][]int, error) {
	if size < 1 {
		return nil, fmt.Errorf("imatrix: chunks of %d tokens", size)
	}
	n := len(tokens) / size
	if n == 0 {
		return nil, fmt.Errorf("imatrix: the calibration text has %d tokens, fewer than one chunk of %d", len(tokens), size)
	}
	if max > 0 {
		n = min(n, max)
	}
	out := make([][]int, n)
	for i := range out {
		c := append([]int(nil), tokens[i*size:(i+1)*size]...)
		if bos >= 0 {
			c[0] = bos
		}
		out[i] = c
	}
	return out, nil
}

// Options control Collect.
type Options struct {
	// Dataset names what the chunks come from (recorded in the file's
	// imatrix.datasets).
	Dataset string
	// Progress, when set, is called after each chunk.
	Progress func(done, total int)
}

// Collect runs m over each chunk (one sequence a forward, no gradients)
// and returns the importance matrix of its projections. The model's
// adapters stay as they are (their output is part of each next
// projection's input); ctx stops it between chunks.
func Collect(ctx context.Context, m *nn.Model, chunks [][]int, opt Options) (*gguf.Imatrix, error) {
	if len(chunks) == 0 {
		return nil, errors.New("imatrix: no calibration chunks")
	}
	arch, _, err := gguf.Architecture(m.Config.ModelType)
	if err != nil {
		return nil, err
	}
	var recs []*recorder
	for _, b := range m.Layers {
		for _, l := range b.Linears() {
			name, err := gguf.TensorNameFor(arch, l.Name+".weight")
			if err != nil {
				return nil, err
			}
			r := &recorder{name: name, inner: l.Adapter, sums: make([]float64, l.In())}
			l.Adapter = r
			recs = append(recs, r)
		}
	}
	// The model is the caller's: its adapters go back however this ends.
	defer func() {
		i := 0
		for _, b := range m.Layers {
			for _, l := range b.Linears() {
				l.Adapter = recs[i].inner
				i++
			}
		}
	}()
	if _, cpu := m.Backend.(*tensor.CPUBackend); cpu {
		defer tensor.UseCPUPool()()
	}
	size := len(chunks[0])
	for i, c := range chunks {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("imatrix: stopped after %d of %d chunks: %w", i, len(chunks), err)
		}
		if len(c) != size {
			return nil, fmt.Errorf("imatrix: chunk %d has %d tokens, chunk 0 %d", i, len(c), size)
		}
		ids := make([]int64, len(c))
		for j, t := range c {
			if t < 0 || t >= m.Config.VocabSize {
				return nil, fmt.Errorf("imatrix: chunk %d, token %d: id %d outside the vocabulary of %d", i, j, t, m.Config.VocabSize)
			}
			ids[j] = int64(t)
		}
		in := nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}
		if err := forward(m, in); err != nil {
			return nil, fmt.Errorf("imatrix: chunk %d: %w", i, err)
		}
		for _, r := range recs {
			if r.err != nil {
				return nil, fmt.Errorf("imatrix: chunk %d: %w", i, r.err)
			}
		}
		if opt.Progress != nil {
			opt.Progress(i+1, len(chunks))
		}
	}
	im := &gguf.Imatrix{Entries: map[string]gguf.ImatrixEntry{}, ChunkCount: len(chunks), ChunkSize: size}
	if opt.Dataset != "" {
		im.Datasets = []string{opt.Dataset}
	}
	for _, r := range recs {
		sums := make([]float32, len(r.sums))
		for j, s := range r.sums {
			sums[j] = float32(s)
		}
		im.Entries[r.name] = gguf.ImatrixEntry{SumSquares: sums, Counts: []float32{float32(r.tokens)}}
	}
	return im, nil
}

// forward runs one chunk through the blocks on an inference tape, whose
// tensors go back to the backend as each block is done: on the CPU, from
// the pool Collect holds, so that each chunk takes the buffers the one
// before gave back instead of fresh memory Go must zero.
func forward(m *nn.Model, in nn.Batch) error {
	defer tensor.ServeFromCPUPool()()
	if _, err := m.Forward(autograd.NewInference(), in, nn.ForwardOptions{NoHead: true}); err != nil {
		return err
	}
	return tensor.Release(in.InputIDs)
}

// recorder stands in a projection's adapter slot: it adds the squares of
// the input it sees to sums, then lets the projection run as it would
// have, with its own adapter or without.
type recorder struct {
	name   string
	inner  nn.Adapter
	sums   []float64 // float64: millions of tokens summed without drift
	tokens int
	err    error
}

func (r *recorder) Forward(tp *autograd.Tape, l *nn.Linear, x *autograd.Var) (*autograd.Var, bool) {
	vals := x.Value.F32()
	cols := len(r.sums)
	if len(vals)%cols != 0 {
		r.err = fmt.Errorf("%s: input of %d values is not rows of %d", r.name, len(vals), cols)
	}
	for row := 0; row+cols <= len(vals); row += cols {
		for j, v := range vals[row : row+cols] {
			r.sums[j] += float64(v) * float64(v)
		}
		r.tokens++
	}
	if r.inner == nil {
		return l.Base(tp, x), true
	}
	return r.inner.Forward(tp, l, x)
}
