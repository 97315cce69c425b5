package recipe

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// What data-parallel workers compare before training (train.Agreement,
// Trainer.CheckInSync): every worker runs Run with its own options, read
// from its own command line and files, so nothing else makes sure they
// train the same thing.
//
//   - The configuration: every key of the resolved config.yaml
//     (Options.Config), named as the error shows it, but for what may
//     differ per worker without changing the run (notPerWorker).
//   - The training data: a hash of the prepared rows (token ids, labels,
//     document starts, subjects) and preference pairs, train
//     and validation, so data files that differ in content, or read from
//     per-worker paths, are told apart whatever their names. Hashing is
//     linear in the tokens (sha256: about a second per 500 M tokens on
//     one core), against the minutes tokenising them took.
//   - The base model: nn.Fingerprint of its folder, computed when it was
//     loaded (the hash a LoRA adapter records of its base).

// perWorkerKeys may differ between workers: paths to the same content
// (node-local copies; the content is compared as data and base, and an
// adapter a run continues as the trainer's starting parameter values), what
// rank 0 alone uses (the run folder), and one machine's memory limits,
// which change how the step is computed, not what it computes.
var perWorkerKeys = []string{
	"model.path", "data.root", "data.files", "data.token_cache", "training.lora.init_from",
	"training.tracking.output_dir", "training.tracking.run_name", "training.tracking.tensorboard",
	"training.max_device_memory", "training.ignore_memory_estimate",
}

// perWorkerOptions are the same, by Options field, for runs without a
// resolved config (Options.Config nil: Run called directly).
var perWorkerOptions = []string{
	"ModelDir", "DataRoot", "DataFiles", "InitAdapter", "TokenCache", "OutDir", "RunName", "ResumeDir", "TensorBoard",
	"MaxDeviceMemory", "IgnoreMemoryEstimate", "Progress", "PaceCollector", "Notices", "Config",
}

// agreements is what this worker compares with rank 0 before training.
func (s *session) agreements() ([]train.Agreement, error) {
	cfg, err := s.o.comparedConfig()
	if err != nil {
		return nil, err
	}
	base := ""
	if s.model != nil {
		base = s.model.Source.Hash
	}
	return []train.Agreement{
		{What: "the configurations", Fields: cfg},
		{What: "the training data", Digest: s.data.digest()},
		{What: "the base models (" + nn.FingerprintScheme + " fingerprints)", Digest: base},
	}, nil
}

// comparedConfig is the run's settings as dotted keys and values, less
// perWorkerKeys; training.device keeps its kind only (workers train on
// cuda:0 and cuda:1 of their machines).
func (o Options) comparedConfig() (map[string]string, error) {
	var tree any
	skip := perWorkerKeys
	if o.Config != nil {
		if err := yaml.Unmarshal(o.Config, &tree); err != nil {
			return nil, fmt.Errorf("recipe: reading the resolved configuration to compare it between workers: %w", err)
		}
	} else {
		o.Log, o.Comm = nil, nil
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("recipe: the options to compare between workers: %w", err)
		}
		if err := json.Unmarshal(raw, &tree); err != nil {
			return nil, err
		}
		skip = perWorkerOptions
	}
	out := map[string]string{}
	flatten(tree, "", out)
	for _, k := range skip {
		for key := range out {
			if key == k || strings.HasPrefix(key, k+".") {
				delete(out, key)
			}
		}
	}
	for _, k := range []string{"training.device", "Device"} {
		if d, ok := out[k]; ok {
			out[k], _, _ = strings.Cut(d, ":")
		}
	}
	return out, nil
}

// flatten writes the leaves of a decoded YAML or JSON tree under their
// dotted paths; a list is one leaf.
func flatten(v any, path string, out map[string]string) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			flatten(v[k], join(k), out)
		}
	case map[any]any:
		for k, x := range v {
			flatten(x, join(fmt.Sprint(k)), out)
		}
	default:
		out[path] = fmt.Sprint(v)
	}
}

// digest is a sha256 of the prepared data, hex.
func (d *dataset) digest() string {
	h := sha256.New()
	buf := make([]byte, 0, 64<<10)
	// A length, then the values, little-endian, through buf.
	ints := func(v []int32) {
		buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(len(v)))
		for {
			n := min(len(v), (cap(buf)-len(buf))/4)
			for _, x := range v[:n] {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(x))
			}
			h.Write(buf)
			if buf, v = buf[:0], v[n:]; len(v) == 0 {
				return
			}
		}
	}
	fmt.Fprintf(h, "subjects %q\x00", d.subjects)
	for _, split := range [][]prep.Row{d.train, d.val} {
		fmt.Fprintf(h, "rows %d\x00", len(split))
		for _, r := range split {
			fmt.Fprintf(h, "%d %d\x00", r.Subject, r.Docs)
			ints(r.InputIDs)
			ints(r.Labels())
			ints(r.Starts)
		}
	}
	pairs := func(ps []dpo.Pair) {
		fmt.Fprintf(h, "pairs %d\x00", len(ps))
		for _, p := range ps {
			ints(p.Prompt)
			ints(p.Chosen)
			ints(p.Rejected)
		}
	}
	pairs(d.pairs)
	pairs(d.valPairs)
	return hex.EncodeToString(h.Sum(nil))
}
