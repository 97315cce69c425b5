package safetensors

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// WriteSharded stores tensors in dir the way transformers' save_pretrained
// does: a single <prefix>.safetensors when the data fits in maxShardBytes
// (or maxShardBytes <= 0), else <prefix>-00001-of-0000N.safetensors shards
// plus <prefix>.safetensors.index.json mapping each tensor to its shard.
// metadata goes into every file's header. Tensors are assigned to shards in
// name order, a new shard starting when the next tensor would overflow the
// current one (a tensor larger than the limit gets a shard of its own).
//
// Every file is written atomically, the index last, so the index never
// names a shard that is not complete. Files of an earlier save with the same
// prefix that the new set does not use (other shard counts, the single file
// or the index) are removed afterwards, so OpenDir cannot mix two saves.
// Tensors with Fill are produced one at a time as their shard is written.
func WriteSharded(dir, prefix string, tensors []Tensor, maxShardBytes int64, metadata map[string]string) error {
	if prefix == "" || strings.ContainsAny(prefix, `/\`) {
		return fmt.Errorf("safetensors write %s: prefix %q: want a plain file name prefix: %w", dir, prefix, ErrInvalid)
	}
	if err := validate(filepath.Join(dir, prefix+".safetensors"), tensors, metadata); err != nil {
		return err
	}
	shards := planShards(tensors, maxShardBytes)
	if len(shards) > 99999 {
		return fmt.Errorf("safetensors write %s: %d shards exceed the 5-digit file numbering; raise maxShardBytes: %w",
			dir, len(shards), ErrInvalid)
	}
	single := prefix + ".safetensors"
	indexName := prefix + ".safetensors.index.json"
	if len(shards) == 1 {
		if err := Write(filepath.Join(dir, single), shards[0], metadata); err != nil {
			return err
		}
		return removeStale(dir, prefix, map[string]bool{single: true})
	}

	keep := map[string]bool{indexName: true}
	weightMap := map[string]string{}
	var total int64
	for i, shard := range shards {
		name := fmt.Sprintf("%s-%05d-of-%05d.safetensors", prefix, i+1, len(shards))
		if err := Write(filepath.Join(dir, name), shard, metadata); err != nil {
			return err
		}
		keep[name] = true
		for _, t := range shard {
			weightMap[t.Name] = name
			total += int64(t.byteSize())
		}
	}
	// total_size is the sum of the tensors' data bytes, as transformers writes it.
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	raw, err := json.MarshalIndent(index, "", "  ") // maps marshal with sorted keys
	if err != nil {
		return fmt.Errorf("safetensors write %s: %w", indexName, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, indexName), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("safetensors write: %w", err)
	}
	return removeStale(dir, prefix, keep)
}

// planShards groups the tensors, in name order, into shards of at most max
// data bytes each (max <= 0: one shard).
func planShards(tensors []Tensor, max int64) [][]Tensor {
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int { return cmp.Compare(a.Name, b.Name) })
	shards := [][]Tensor{nil}
	var size int64
	for _, t := range sorted {
		n := int64(t.byteSize())
		last := len(shards) - 1
		if max > 0 && len(shards[last]) > 0 && size+n > max {
			shards = append(shards, nil)
			last++
			size = 0
		}
		shards[last] = append(shards[last], t)
		size += n
	}
	return shards
}

// removeStale deletes the files of other saves with this prefix: the
// single file, the index and shards of any count, except those in keep.
func removeStale(dir, prefix string, keep map[string]bool) error {
	shardRE := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-\d{5}-of-\d{5}\.safetensors$`)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors write %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if keep[name] || e.IsDir() {
			continue
		}
		if name == prefix+".safetensors" || name == prefix+".safetensors.index.json" || shardRE.MatchString(name) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("safetensors write %s: remove stale %s: %w", dir, name, err)
			}
		}
	}
	return nil
}
