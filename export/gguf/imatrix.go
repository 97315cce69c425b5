package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/fsutil"
)

// Imatrix is an importance matrix, the file llama.cpp's llama-imatrix
// writes and llama-quantize --imatrix reads: for each weight (by its GGUF
// name), the sum over calibration tokens of the square of each input
// column, and the number of tokens. Quantizing a weight then weighs each
// column's error by its mean square input (AppendEncodedWeighted), so the
// columns the model actually drives keep their precision.
//
// Two formats are read: the GGUF one (general.type "imatrix", tensors
// NAME.in_sum2 [experts, columns] and NAME.counts [experts, 1], the
// imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size keys), which
// is llama-imatrix's default and what WriteImatrix writes, and the legacy
// .dat one (per entry: name, calls, values holding the mean times the
// calls). Either way the importance llama-quantize uses is the sum over
// the count, in float32 (Entry.Importance).
type Imatrix struct {
	Entries map[string]ImatrixEntry
	// Datasets names what the matrix was computed on (files or a
	// description); ChunkCount and ChunkSize are the number of chunks and
	// the tokens in each (0 when unknown, as in a legacy file).
	Datasets   []string
	ChunkCount int
	ChunkSize  int
	// Path is the file the matrix was read from ("" when computed): the
	// quantized model records it as quantize.imatrix.file.
	Path string
}

// ImatrixEntry is one weight's statistics. Dense weights have one matrix;
// mixture-of-experts weights one per expert, in which case SumSquares holds
// len(Counts) runs of columns.
type ImatrixEntry struct {
	SumSquares []float32
	Counts     []float32
}

// Importance is the per-column weighting llama-quantize gives the
// quantizer: SumSquares over the count, in float32 as it divides, and 1 for
// the columns of a matrix that saw no token.
func (e ImatrixEntry) Importance() []float32 {
	out := make([]float32, len(e.SumSquares))
	if len(e.Counts) == 0 {
		return out
	}
	cols := len(e.SumSquares) / len(e.Counts)
	for m, c := range e.Counts {
		for i := m * cols; i < (m+1)*cols; i++ {
			if c > 0 {
				out[i] = e.SumSquares[i] / c
			} else {
				out[i] = 1
			}
		}
	}
	return out
}

// imatrixMaxBytes bounds a legacy imatrix file read into memory: an 8B
// model's is about 8 MB, a 70B one's under 100 MB.
const imatrixMaxBytes = 1 << 30

// ReadImatrix reads an importance matrix in llama.cpp's GGUF or legacy .dat
// format. Counts, lengths and values are checked: a corrupt or hostile file
// gives an error naming the file and the entry, never a panic or a huge
// allocation.
func ReadImatrix(path string) (*Imatrix, error) {
	// OpenRegular: a named pipe nobody writes blocked the open itself,
	// where no Ctrl-C reaches.
	f, _, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	magic := make([]byte, 4)
	_, err = f.ReadAt(magic, 0)
	f.Close()
	var im *Imatrix
	if err == nil && string(magic) == Magic {
		im, err = readImatrixGGUF(path)
	} else {
		im, err = readImatrixLegacy(path)
	}
	if err != nil {
		return nil, err
	}
	im.Path = path
	for _, name := range im.Names() {
		e := im.Entries[name]
		for i, v := range e.SumSquares {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v < 0 {
				return nil, fmt.Errorf("imatrix: %s: entry %q: value %d is %v (sums of squares are finite and not negative)", path, name, i, v)
			}
		}
		for i, c := range e.Counts {
			if math.IsNaN(float64(c)) || math.IsInf(float64(c), 0) || c < 0 {
				return nil, fmt.Errorf("imatrix: %s: entry %q: count %d is %v", path, name, i, c)
			}
		}
	}
	return im, nil
}

func readImatrixGGUF(path string) (*Imatrix, error) {
	g, err := Read(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	defer g.Close()
	if t, ok := g.String("general.type"); ok && t != "imatrix" {
		return nil, fmt.Errorf("imatrix: %s is a GGUF %s file, not an importance matrix", path, t)
	}
	im := &Imatrix{Entries: map[string]ImatrixEntry{}}
	if v, ok := g.Get("imatrix.datasets"); ok {
		if ds, ok := v.([]string); ok {
			im.Datasets = ds
		}
	}
	if n, ok := g.Uint("imatrix.chunk_count"); ok {
		im.ChunkCount = int(min(n, math.MaxInt32))
	}
	if n, ok := g.Uint("imatrix.chunk_size"); ok {
		im.ChunkSize = int(min(n, math.MaxInt32))
	}
	for _, t := range g.Tensors {
		name, ok := strings.CutSuffix(t.Name, ".in_sum2")
		if !ok {
			if _, isCount := strings.CutSuffix(t.Name, ".counts"); !isCount {
				return nil, fmt.Errorf("imatrix: %s: tensor %q is neither NAME.in_sum2 nor NAME.counts", path, t.Name)
			}
			continue
		}
		ct, ok := g.Tensor(name + ".counts")
		if !ok {
			return nil, fmt.Errorf("imatrix: %s: %q has sums but no %q", path, name, name+".counts")
		}
		if t.Type != F32 || ct.Type != F32 {
			return nil, fmt.Errorf("imatrix: %s: %q: sums and counts are %s and %s, F32 expected", path, name, t.Type, ct.Type)
		}
		experts := 1
		if len(t.Dims) > 1 {
			experts = int(t.Dims[1])
		}
		if len(t.Dims) > 2 || ct.NumElements() != experts || ct.Dims[0] != 1 {
			return nil, fmt.Errorf("imatrix: %s: %q: sums of dimensions %v do not go with counts of dimensions %v", path, name, t.Dims, ct.Dims)
		}
		var e ImatrixEntry
		if e.SumSquares, err = g.Float32(t.Name); err != nil {
			return nil, fmt.Errorf("imatrix: %w", err)
		}
		if e.Counts, err = g.Float32(ct.Name); err != nil {
			return nil, fmt.Errorf("imatrix: %w", err)
		}
		im.Entries[name] = e
	}
	for _, t := range g.Tensors {
		if name, ok := strings.CutSuffix(t.Name, ".counts"); ok {
			if _, has := im.Entries[name]; !has {
				return nil, fmt.Errorf("imatrix: %s: %q has counts but no %q", path, name, name+".in_sum2")
			}
		}
	}
	if len(im.Entries) == 0 {
		return nil, fmt.Errorf("imatrix: %s holds no entries", path)
	}
	return im, nil
}

// readImatrixLegacy reads the .dat format: i32 entries, then per entry
// i32 name length, name, i32 calls, i32 values, values as float32, then
// optionally i32 chunks, i32 dataset length and the dataset name.
func readImatrixLegacy(path string) (*Imatrix, error) {
	b, err := fsutil.ReadFileLimit(path, imatrixMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	r := bytes.NewReader(b)
	fail := func(format string, a ...any) (*Imatrix, error) {
		return nil, fmt.Errorf("imatrix: %s (neither GGUF nor llama.cpp's legacy .dat format): %s", path, fmt.Sprintf(format, a...))
	}
	i32 := func() (int, bool) {
		var v int32
		if binary.Read(r, binary.LittleEndian, &v) != nil {
			return 0, false
		}
		return int(v), true
	}
	n, ok := i32()
	// Every entry takes at least 16 bytes.
	if !ok || n < 1 || n > len(b)/16 {
		return fail("%d entries", n)
	}
	im := &Imatrix{Entries: map[string]ImatrixEntry{}}
	for i := range n {
		nameLen, ok := i32()
		if !ok || nameLen < 1 || nameLen > 1024 || nameLen > r.Len() {
			return fail("entry %d: name of %d bytes", i, nameLen)
		}
		name := make([]byte, nameLen)
		r.Read(name)
		calls, ok1 := i32()
		nval, ok2 := i32()
		if !ok1 || !ok2 || calls < 0 || nval < 1 || nval > r.Len()/4 {
			return fail("entry %d (%q): %d calls, %d values in the %d bytes left", i, name, calls, nval, r.Len())
		}
		sums := make([]float32, nval)
		binary.Read(r, binary.LittleEndian, sums)
		if _, dup := im.Entries[string(name)]; dup {
			return fail("entry %q appears twice", name)
		}
		im.Entries[string(name)] = ImatrixEntry{SumSquares: sums, Counts: []float32{float32(calls)}}
	}
	if r.Len() > 0 {
		chunks, ok := i32()
		if ok && chunks > 0 {
			im.ChunkCount = chunks
		}
		if l, ok := i32(); ok && l > 0 && l <= r.Len() {
			ds := make([]byte, l)
			r.Read(ds)
			im.Datasets = []string{string(ds)}
		}
	}
	return im, nil
}

// Names lists the entries in sorted order.
func (im *Imatrix) Names() []string {
	names := make([]string, 0, len(im.Entries))
	for n := range im.Entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// importance is the weighting of weight name, whose rows hold cols values:
// nil when the matrix has no entry for it (the weight is quantized without
// one, as llama-quantize does), an error when the entry's length is not
// the weight's (a matrix of another model).
func (im *Imatrix) importance(name string, cols int) ([]float32, error) {
	e, ok := im.Entries[name]
	if !ok {
		return nil, nil
	}
	if len(e.Counts) != 1 || len(e.SumSquares) != cols {
		return nil, fmt.Errorf("imatrix %s: entry %q has %d values in %d matrices; the weight has rows of %d (a matrix computed for another model?)", im.Path, name, len(e.SumSquares), len(e.Counts), cols)
	}
	return e.Importance(), nil
}

// WriteImatrix writes im atomically in llama.cpp's GGUF imatrix format
// (as llama-imatrix writes it: entries in name order, the sums and counts
// as F32), which llama-quantize --imatrix reads as well as ftune.
func WriteImatrix(path string, im *Imatrix) error {
	if len(im.Entries) == 0 {
		return errors.New("imatrix: no entries to write")
	}
	b := &Builder{index: map[string]int{}, names: map[string]bool{}, alignment: DefaultAlignment}
	b.Set("general.type", KindImatrix)
	b.Set(WrittenByKey, WrittenBy) // so that a later run may replace it
	datasets := im.Datasets
	if datasets == nil {
		datasets = []string{}
	}
	b.Set("imatrix.datasets", datasets)
	b.Set("imatrix.chunk_count", uint32(im.ChunkCount))
	b.Set("imatrix.chunk_size", uint32(im.ChunkSize))
	for _, name := range im.Names() {
		e := im.Entries[name]
		if len(e.Counts) == 0 || len(e.SumSquares)%len(e.Counts) != 0 {
			return fmt.Errorf("imatrix: entry %q: %d values do not split into %d matrices", name, len(e.SumSquares), len(e.Counts))
		}
		// A NaN or Inf activation (from weights holding them) makes a
		// matrix that weighs every quantization by garbage: refused, as
		// exports refuse such weights.
		for _, part := range []struct {
			what string
			v    []float32
		}{{"in_sum2", e.SumSquares}, {"counts", e.Counts}} {
			for i, v := range part.v {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("imatrix: entry %q: %s value %d is %v: %w; the model's weights (or its adapter's) hold NaN or Inf, so its activations do; nothing was written", name, part.what, i, v, export.ErrNonFinite)
				}
			}
		}
		experts := len(e.Counts)
		if err := b.AddTensor(name+".in_sum2", []int{experts, len(e.SumSquares) / experts}, F32, e.SumSquares); err != nil {
			return err
		}
		if err := b.AddTensor(name+".counts", []int{experts, 1}, F32, e.Counts); err != nil {
			return err
		}
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("imatrix: %w", err)
		}
	}
	if err := b.WriteFile(path); err != nil {
		return fmt.Errorf("imatrix: %w", err)
	}
	return nil
}

// takesImportance reports whether ggml quantizes type t differently with
// an importance matrix: every block type but Q8_0, whose scale is the
// block's largest magnitude whatever the weighting.
func takesImportance(t TensorType) bool {
	switch t {
	case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS:
		return true
	}
	return false
}
