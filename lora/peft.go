package lora

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/tensor"
)

// File names of a PEFT adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// SavedPrefix is what PEFT's PeftModelForCausalLM puts before a module name
// in adapter_model.safetensors ("base_model.model." + "model.layers.0...").
const SavedPrefix = "base_model.model."

// Matrix part names inside a LoRA module.
const (
	PartA = "lora_A"
	PartB = "lora_B"
)

// ErrAdapterMismatch is wrapped by the errors of CheckWeights: the adapter's
// tensors do not fit the model (missing, unexpected, or of another shape).
// maxConfigBytes bounds the JSON files of an adapter folder
// (adapter_config.json, ftune_base.json), kilobytes when real; an adapter
// downloaded from elsewhere is untrusted.
const maxConfigBytes = 16 << 20

var ErrAdapterMismatch = errors.New("adapter does not fit the model")

// Tensor is a float32 tensor: its shape and row-major data.
type Tensor struct {
	Shape []int
	Data  []float32
}

// WeightName is the in-memory name of a module's A or B matrix: the module
// name + ".lora_A.weight" (PEFT's saved key without SavedPrefix).
func WeightName(module, part string) string { return module + "." + part + ".weight" }

// SplitWeightName splits an in-memory name from WeightName into module and
// part; ok is false for names of other tensors (e.g. modules_to_save).
func SplitWeightName(name string) (module, part string, ok bool) {
	for _, p := range []string{PartA, PartB} {
		if m, found := strings.CutSuffix(name, "."+p+".weight"); found {
			return m, p, true
		}
	}
	return "", "", false
}

// SavedKey is PEFT's adapter_model.safetensors key for an in-memory name:
// "model.layers.0.self_attn.q_proj.lora_A.weight" becomes
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".
func SavedKey(name string) string { return SavedPrefix + name }

// InMemoryName maps a PEFT key to the in-memory name and the adapter name
// it carried. It accepts the saved form, the form of a live PeftModel's
// named_parameters (with the adapter name: "...q_proj.lora_A.default.weight",
// as in gradient dumps), and keys saved without "base_model.model." (as
// transformers' integrated PEFT writes them). modules_to_save copies
// ("lm_head.modules_to_save.default.weight") map to the module's own name,
// DoRA magnitudes to "<module>.lora_magnitude_vector" (the saved form).
func InMemoryName(key string) (name, adapter string) {
	name = strings.TrimPrefix(key, SavedPrefix)
	parts := strings.Split(name, ".")
	n := len(parts)
	// <module>.lora_magnitude_vector.<adapter>.weight (a DoraLinearLayer;
	// saved without the ".weight") or .<adapter> (PEFT < 0.12's ParameterDict)
	if n >= 4 && parts[n-3] == PartMagnitude && parts[n-1] == "weight" {
		return strings.Join(parts[:n-2], "."), parts[n-2]
	}
	if n >= 3 && parts[n-2] == PartMagnitude {
		return strings.Join(parts[:n-1], "."), parts[n-1]
	}
	// <module>.lora_X.<adapter>.weight|bias
	if n >= 4 && (parts[n-1] == "weight" || parts[n-1] == "bias") && isLoRAPart(parts[n-3]) {
		adapter = parts[n-2]
		parts = slices.Delete(parts, n-2, n-1)
		return strings.Join(parts, "."), adapter
	}
	// <module>.lora_embedding_X.<adapter> (a ParameterDict, no ".weight")
	if n >= 3 && strings.HasPrefix(parts[n-2], "lora_embedding_") {
		return strings.Join(parts[:n-1], "."), parts[n-1]
	}
	// <module>.modules_to_save.<adapter>.<param>
	if n >= 4 && parts[n-3] == "modules_to_save" {
		adapter = parts[n-2]
		parts = slices.Delete(parts, n-3, n-1)
		return strings.Join(parts, "."), adapter
	}
	return name, ""
}

func isLoRAPart(s string) bool {
	switch s {
	case PartA, PartB:
		return true
	}
	return false
}

// ReadConfig reads and validates an adapter_config.json.
func ReadConfig(path string) (*Config, error) {
	data, err := fsutil.ReadFileLimit(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("read adapter config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("adapter config %s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c as PEFT does, atomically.
func WriteConfig(path string, c *Config) error {
	data, err := c.JSON()
	if err != nil {
		return fmt.Errorf("write adapter config %s: %w", path, err)
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

// ReadWeights reads a safetensors file of LoRA tensors named the PEFT way
// (adapter_model.safetensors, or a gradient dump with ".default" adapter
// names) into a map from in-memory name to float32 tensor. F32, BF16 and F16
// are accepted. Two keys that map to the same name (two adapters in one
// file) are an error. Names and dtypes are checked from the header before
// any tensor is converted.
func ReadWeights(path string) (map[string]Tensor, error) {
	return readWeights(path, nil)
}

// readWeights is ReadWeights with check run on the file's header first: it
// is given every tensor's in-memory name and shape (Data nil), and an error
// from it is returned before any tensor data is read or converted, so an
// adapter file that does not fit costs its header, not its size in float32.
func readWeights(path string, check func(shapes map[string]Tensor) error) (map[string]Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read adapter weights: %w%s", err, safetensors.PickleHint(filepath.Dir(path), "adapter_model"))
	}
	defer f.Close()
	keys := f.Names()
	shapes := make(map[string]Tensor, len(keys))
	from := make(map[string]string, len(keys))
	for _, key := range keys {
		t, err := f.Tensor(key) // a view of the mapping: no data is read
		if err != nil {
			return nil, fmt.Errorf("read adapter weights: %w", err)
		}
		switch t.DType {
		case safetensors.F32, safetensors.BF16, safetensors.F16, safetensors.F64:
		default:
			return nil, fmt.Errorf("read adapter weights %s: tensor %q: dtype %s is not a float type (F32, BF16, F16 or F64 expected): %w", path, key, t.DType, safetensors.ErrUnsupportedDType)
		}
		name, _ := InMemoryName(key)
		if prev, dup := from[name]; dup {
			return nil, fmt.Errorf("read adapter weights %s: tensors %q and %q both map to %q (more than one adapter in the file?)", path, prev, key, name)
		}
		from[name] = key
		shapes[name] = Tensor{Shape: t.Shape}
	}
	if check != nil {
		if err := check(shapes); err != nil {
			return nil, fmt.Errorf("read adapter weights %s: %w", path, err)
		}
	}
	out := make(map[string]Tensor, len(shapes))
	for _, key := range keys {
		name, _ := InMemoryName(key)
		t, err := f.Tensor(key)
		if err != nil {
			return nil, fmt.Errorf("read adapter weights: %w", err)
		}
		data, err := safetensors.Floats(t)
		if err != nil {
			return nil, fmt.Errorf("read adapter weights %s: tensor %q: %w", path, key, err)
		}
		f.Release(key)
		out[name] = Tensor{Shape: t.Shape, Data: data}
	}
	return out, nil
}

// checkConfigWeights checks, before their data is read, the tensors of an
// adapter file against what its config alone allows: each one a module's A
// or B matrix with the module's rank as its r ([r, in] and [out, r]), a
// DoRA magnitude (a vector) when use_dora, or a weight of a module in
// modules_to_save. Everything it refuses CheckWeights would refuse for any
// model too, so it only moves those errors before the conversion; the
// model's own dimensions are left to CheckWeights.
func checkConfigWeights(c *Config, shapes map[string]Tensor) error {
	var shape, unexpected []string
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		s := shapes[name].Shape
		if c.isModuleToSave(name) {
			continue
		}
		if module, part, ok := SplitWeightName(name); ok {
			r := c.Rank(module)
			if len(s) != 2 || (part == PartA && s[0] != r) || (part == PartB && s[1] != r) {
				want := fmt.Sprintf("[%d, in]", r)
				if part == PartB {
					want = fmt.Sprintf("[out, %d]", r)
				}
				shape = append(shape, fmt.Sprintf("%s is %v, rank %d needs %s", name, s, r, want))
			}
			continue
		}
		if module, ok := strings.CutSuffix(name, "."+PartMagnitude); ok && c.UseDoRA {
			if len(s) != 1 {
				shape = append(shape, fmt.Sprintf("%s is %v, a DoRA magnitude is a vector", MagnitudeName(module), s))
			}
			continue
		}
		unexpected = append(unexpected, name)
	}
	return mismatch("shape mismatch", shape, nil, unexpected)
}

// WriteWeights writes tensors (keyed by in-memory name) as
// adapter_model.safetensors: F32, PEFT's saved key names, metadata
// {"format": "pt"} as PEFT writes it; atomically.
func WriteWeights(path string, weights map[string]Tensor) error {
	shapes := make(map[string][]int, len(weights))
	for name, w := range weights {
		shapes[name] = w.Shape
	}
	return writeWeights(context.Background(), path, shapes, func(name string) []float32 { return weights[name].Data })
}

// writeWeights is WriteWeights with each tensor's values asked of values
// when the file reaches it and converted then, so the weights are never
// all copied at once (trained embeddings are gigabytes). A cancelled ctx
// stops it before the next tensor with an error wrapping ctx's, and the
// file at path stays as it was (the write goes to a temporary).
func writeWeights(ctx context.Context, path string, shapes map[string][]int, values func(name string) []float32) error {
	ts := make([]safetensors.Tensor, 0, len(shapes))
	var stopped error // returned as it is, not under the temporary's path
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		fill := func() ([]byte, error) {
			if err := ctx.Err(); err != nil {
				stopped = fmt.Errorf("write adapter weights: stopped before %s: %w", name, err)
				return nil, stopped
			}
			x := values(name)
			if n := tensor.Shape(shape).Numel(); n != len(x) {
				return nil, fmt.Errorf("write adapter weights %s: tensor %q: shape %v has %d elements, data %d", path, name, shape, n, len(x))
			}
			b := make([]byte, 4*len(x))
			for i, v := range x {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			return b, nil
		}
		ts = append(ts, safetensors.Tensor{Name: SavedKey(name), DType: safetensors.F32, Shape: slices.Clone(shape), Fill: fill})
	}
	if err := safetensors.Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		if stopped != nil {
			return stopped
		}
		return fmt.Errorf("write adapter weights: %w", err)
	}
	return nil
}

// LoadAdapter reads a PEFT adapter folder (adapter_config.json and
// adapter_model.safetensors). Tensors that no model could take with this
// config (names that are not its A, B, magnitude or modules_to_save
// weights, or whose rank is not the config's) are refused, wrapping
// ErrAdapterMismatch, from the file's header before any data is read.
func LoadAdapter(dir string) (*Config, map[string]Tensor, error) {
	return loadAdapter(dir, nil)
}

// loadAdapter is LoadAdapter with check (when not nil) run on the header's
// shapes too, after the config's own checks and before any data is read:
// Load checks them against its model there.
func loadAdapter(dir string, check func(c *Config, shapes map[string]Tensor) error) (*Config, map[string]Tensor, error) {
	c, err := ReadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, err
	}
	w, err := readWeights(filepath.Join(dir, WeightsFile), func(shapes map[string]Tensor) error {
		if err := checkConfigWeights(c, shapes); err != nil {
			return err
		}
		if check != nil {
			return check(c, shapes)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c, w, nil
}

// SaveAdapter writes a PEFT adapter folder, creating dir. Each file is
// replaced atomically; the weights are written first so that a config never
// describes weights that are not there yet.
func SaveAdapter(dir string, c *Config, weights map[string]Tensor) error {
	return saveAdapter(dir, c, func(path string) error { return WriteWeights(path, weights) })
}

// saveAdapter is SaveAdapter with the weights file written by write.
func saveAdapter(dir string, c *Config, write func(path string) error) error {
	if _, err := c.JSON(); err != nil { // refuse before touching anything
		return fmt.Errorf("save adapter %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	if err := write(filepath.Join(dir, WeightsFile)); err != nil {
		return err
	}
	return WriteConfig(filepath.Join(dir, ConfigFile), c)
}

// Linear describes one linear layer of the base model: its full module name
// and weight shape [Out, In].
type Linear struct {
	Name    string
	Out, In int
}

// CheckWeights checks that weights are exactly the adapter c describes for
// a model with these linear layers: for every selected target module, A of
// shape [r, In] and B of shape [Out, r] (r from rank_pattern or r) and with
// use_dora the magnitude [Out], plus the full weights of modules_to_save
// (whose shapes Load checks against the model); nothing missing, nothing else. Errors
// wrap ErrAdapterMismatch and list the offending names, so an adapter made
// for another base fails before anything is loaded.
func CheckWeights(c *Config, weights map[string]Tensor, linears []Linear, outputHead string) error {
	names := make([]string, len(linears))
	byName := make(map[string]Linear, len(linears))
	for i, l := range linears {
		names[i] = l.Name
		byName[l.Name] = l
	}
	targets, err := c.SelectTargets(names, outputHead)
	if err != nil {
		return err
	}
	want := map[string][]int{}
	for _, t := range targets {
		l, r := byName[t], c.Rank(t)
		want[WeightName(t, PartA)] = []int{r, l.In}
		want[WeightName(t, PartB)] = []int{l.Out, r}
		if c.UseDoRA {
			want[MagnitudeName(t)] = []int{l.Out}
		}
	}
	var missing, shape, unexpected []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w, ok := weights[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case !slices.Equal(w.Shape, want[name]):
			shape = append(shape, fmt.Sprintf("%s is %v, the model needs %v", name, w.Shape, want[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		if _, ok := want[name]; ok || c.isModuleToSave(name) {
			continue
		}
		unexpected = append(unexpected, name)
	}
	return mismatch("shape mismatch (adapter made for another base?)", shape, missing, unexpected)
}

// mismatch is ErrAdapterMismatch listing what does not fit (nil when
// nothing): tensors of the wrong shape (under shapeLabel), missing and
// unexpected ones.
func mismatch(shapeLabel string, shape, missing, unexpected []string) error {
	var errs []string
	if len(shape) > 0 {
		errs = append(errs, shapeLabel+": "+listSome(shape))
	}
	if len(missing) > 0 {
		errs = append(errs, "missing: "+listSome(missing))
	}
	if len(unexpected) > 0 {
		errs = append(errs, "unexpected: "+listSome(unexpected))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrAdapterMismatch, strings.Join(errs, "; "))
	}
	return nil
}

// isModuleToSave reports whether a tensor name belongs to a module listed
// in modules_to_save (saved as a full copy, e.g. "lm_head.weight").
func (c *Config) isModuleToSave(name string) bool {
	mod := name[:max(0, strings.LastIndexByte(name, '.'))]
	for _, m := range c.ModulesToSave {
		if mod == m || strings.HasSuffix(mod, "."+m) {
			return true
		}
	}
	return false
}

func listSome(xs []string) string {
	const show = 5
	if len(xs) <= show {
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(xs[:show], ", "), len(xs)-show)
}
