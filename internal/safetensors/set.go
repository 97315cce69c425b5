package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// PickleHint says, for a folder without prefix's safetensors, which PyTorch
// pickle file it holds instead (pytorch_model.bin and its shards for
// "model", adapter_model.bin for "adapter_model"), as a clause to append to
// the error; "" when there is none. Older checkpoints were saved that way.
func PickleHint(dir, prefix string) string {
	names := []string{prefix + ".bin", prefix + ".bin.index.json"}
	if prefix == "model" {
		names = append(names, "pytorch_model.bin", "pytorch_model.bin.index.json", "consolidated.00.pth")
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return fmt.Sprintf(" (the folder holds %s: PyTorch pickle weights, which ftune does not read, as loading a pickle can run code; "+
				"save them as safetensors first, e.g. save_pretrained(folder, safe_serialization=True) in transformers or PEFT)", n)
		}
	}
	return ""
}

// maxIndexBytes bounds a .safetensors.index.json, read whole: a 405B
// model's is about 100 KB, and a downloaded one is untrusted.
const maxIndexBytes = 64 << 20

// Set is one lookup over the safetensors files of a model folder: a single
// file, or the shards that an index's weight_map names.
type Set struct {
	dir    string
	shards map[string]*File // shard file name -> open file
	where  map[string]*File // tensor name -> the shard holding it
	names  []string         // sorted
	closed bool
}

// OpenDir opens the model weights of a Hugging Face folder: model.safetensors
// if it exists (transformers prefers it too), else the shards listed by
// model.safetensors.index.json.
func OpenDir(dir string) (*Set, error) { return OpenDirPrefix(dir, "model") }

// OpenDirPrefix is OpenDir for files named <prefix>.safetensors and
// <prefix>.safetensors.index.json (for example "adapter_model").
func OpenDirPrefix(dir, prefix string) (*Set, error) {
	single := filepath.Join(dir, prefix+".safetensors")
	f, err := Open(single)
	if err == nil {
		return newSet(dir, map[string]*File{prefix + ".safetensors": f}, nil), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	index := filepath.Join(dir, prefix+".safetensors.index.json")
	raw, err := fsutil.ReadFileLimit(index, maxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors %s: neither %s.safetensors nor %s.safetensors.index.json exists%s: %w",
			dir, prefix, prefix, PickleHint(dir, prefix), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	weightMap, err := parseIndex(index, raw)
	if err != nil {
		return nil, err
	}
	shards := map[string]*File{}
	closeAll := func() {
		for _, f := range shards {
			f.Close()
		}
	}
	for _, shard := range slices.Sorted(maps.Values(weightMap)) {
		if shards[shard] != nil {
			continue
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("shard %s listed in %s: %w", shard, index, err)
		}
		shards[shard] = f
	}
	for _, name := range slices.Sorted(maps.Keys(weightMap)) {
		shard := weightMap[name]
		if !shards[shard].Has(name) {
			closeAll()
			return nil, fmt.Errorf("safetensors %s: tensor %q: the index places it in shard %s, which does not hold it: %w",
				index, name, shard, ErrCorrupt)
		}
	}
	return newSet(dir, shards, weightMap), nil
}

// newSet indexes the tensors; weightMap nil means every tensor of every
// shard (the single-file case).
func newSet(dir string, shards map[string]*File, weightMap map[string]string) *Set {
	s := &Set{dir: dir, shards: shards, where: map[string]*File{}}
	if weightMap == nil {
		for _, f := range shards {
			for _, n := range f.hdr.names {
				s.where[n] = f
			}
		}
	} else {
		// Tensors that a shard holds but the weight_map omits stay hidden:
		// the index is what transformers loads from.
		for n, shard := range weightMap {
			s.where[n] = shards[shard]
		}
	}
	s.names = slices.Sorted(maps.Keys(s.where))
	return s
}

// parseIndex reads {"metadata": {...}, "weight_map": {tensor: shard}} and
// rejects shard names that are not plain file names in the folder.
func parseIndex(path string, raw []byte) (map[string]string, error) {
	var idx struct {
		WeightMap map[string]json.RawMessage `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors %s: invalid index JSON: %v: %w", path, err, ErrCorrupt)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors %s: weight_map is missing or empty: %w", path, ErrCorrupt)
	}
	out := make(map[string]string, len(idx.WeightMap))
	for name, v := range idx.WeightMap {
		var shard string
		if err := json.Unmarshal(v, &shard); err != nil {
			return nil, fmt.Errorf("safetensors %s: weight_map[%q] is %.40s, want a file name: %w", path, name, v, ErrCorrupt)
		}
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.IsAbs(shard) {
			return nil, fmt.Errorf("safetensors %s: weight_map[%q] is %q, want a file name inside the folder: %w",
				path, name, shard, ErrCorrupt)
		}
		out[name] = shard
	}
	return out, nil
}

// Dir returns the folder the set was opened from.
func (s *Set) Dir() string { return s.dir }

// Names returns every tensor name of the set, sorted (a new slice).
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Len returns the number of tensors.
func (s *Set) Len() int { return len(s.names) }

// Has reports whether the set holds a tensor of that name.
func (s *Set) Has(name string) bool { return s.where[name] != nil }

// Shards returns the file names (relative to Dir) of the set's files, sorted.
func (s *Set) Shards() []string { return slices.Sorted(maps.Keys(s.shards)) }

// FileOf is the path of the shard holding name ("" when none does).
func (s *Set) FileOf(name string) string {
	if f := s.where[name]; f != nil {
		return f.Path()
	}
	return ""
}

// Tensor returns the named tensor from whichever shard holds it; errors name
// that shard's path. A missing name wraps ErrNotFound.
func (s *Set) Tensor(name string) (Tensor, error) {
	if s.closed {
		return Tensor{}, fmt.Errorf("safetensors %s: tensor %q: %w", s.dir, name, ErrClosed)
	}
	f := s.where[name]
	if f == nil {
		return Tensor{}, fmt.Errorf("safetensors %s: tensor %q: in none of its %d file(s): %w", s.dir, name, len(s.shards), ErrNotFound)
	}
	return f.Tensor(name)
}

// Release is File.Release on the shard that holds name.
func (s *Set) Release(name string) {
	if f := s.where[name]; f != nil && !s.closed {
		f.Release(name)
	}
}

// Close unmaps every shard; the first error is returned.
func (s *Set) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var first error
	for _, shard := range s.Shards() {
		if err := s.shards[shard].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
