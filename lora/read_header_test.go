package lora

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/nn"
)

// junkBytes is the size of the tensors these tests add to an adapter: 16
// MiB of BF16, which converting to float32 would allocate 32 MiB for.
const junkBytes = 16 << 20

// allocLimit is what reading a refused file may allocate: the fixture
// adapter's header and names (tens of KiB), far under one junk conversion.
const allocLimit = 4 << 20

// fixtureAdapterWith copies the llama-tiny fixture's adapter_init into a
// new folder with its weights file rewritten: the tensors for which
// replace returns false are dropped, then extra is added.
func fixtureAdapterWith(t *testing.T, replace func(key string) bool, extra ...safetensors.Tensor) string {
	t.Helper()
	src := filepath.Join(fixture, "adapter_init")
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(src, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, key := range f.Names() {
		if replace != nil && !replace(key) {
			continue
		}
		x, err := f.Tensor(key)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, x)
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), append(ts, extra...), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// allocated runs f and returns the bytes it allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLoadRefusesJunkFromTheHeader: a tensor no LoRA adapter has
// (junk.weight, 16 MiB of BF16) is refused by LoadAdapter and Load from
// the file's header, before any tensor is converted to float32.
func TestLoadRefusesJunkFromTheHeader(t *testing.T) {
	junk := safetensors.Tensor{Name: "junk.weight", DType: safetensors.BF16, Shape: []int{2048, junkBytes / 2 / 2048}, Data: make([]byte, junkBytes)}
	dir := fixtureAdapterWith(t, nil, junk)
	m := loadFixture(t, nn.LoadOptions{})
	for _, c := range []struct {
		name string
		load func() error
	}{
		{"LoadAdapter", func() error { _, _, err := LoadAdapter(dir); return err }},
		{"Load", func() error { _, err := Load(m, dir, "x"); return err }},
	} {
		var err error
		n := allocated(func() { err = c.load() })
		if !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), "unexpected: junk.weight") {
			t.Errorf("%s: %v; want an ErrAdapterMismatch naming junk.weight as unexpected", c.name, err)
		}
		if n > allocLimit {
			t.Errorf("%s allocated %d bytes before refusing the file (limit %d): the junk tensor was converted", c.name, n, allocLimit)
		}
	}
	// The fixture itself still loads.
	if _, err := Load(m, fixtureAdapterWith(t, nil), "ok"); err != nil {
		t.Errorf("fixture adapter: %v", err)
	}
}

// TestLoadAdapterRefusesAnotherRankFromTheHeader: an A matrix whose rows
// are not the config's r (16 MiB of them here), or a B whose columns are
// not, is refused before conversion, naming the tensor and the rank.
func TestLoadAdapterRefusesAnotherRankFromTheHeader(t *testing.T) {
	const a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
	const b = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"
	for _, c := range []struct {
		key   string
		shape []int
		want  string
	}{
		{a, []int{junkBytes / 2 / 64, 64}, "model.layers.0.self_attn.q_proj.lora_A.weight is [131072 64], rank 4 needs [4, in]"},
		{b, []int{64, junkBytes / 2 / 64}, "model.layers.1.mlp.down_proj.lora_B.weight is [64 131072], rank 4 needs [out, 4]"},
		{b, []int{junkBytes / 2}, "model.layers.1.mlp.down_proj.lora_B.weight is [8388608], rank 4 needs [out, 4]"},
	} {
		big := safetensors.Tensor{Name: c.key, DType: safetensors.BF16, Shape: c.shape, Data: make([]byte, junkBytes)}
		dir := fixtureAdapterWith(t, func(key string) bool { return key != c.key }, big)
		var err error
		n := allocated(func() { _, _, err = LoadAdapter(dir) })
		if !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v; want an ErrAdapterMismatch saying %q", c.key, c.shape, err, c.want)
		}
		if n > allocLimit {
			t.Errorf("%s %v: allocated %d bytes before refusing the file (limit %d)", c.key, c.shape, n, allocLimit)
		}
	}
}

// TestReadWeightsChecksDTypesFirst: a file whose last tensor cannot be
// read as floats is refused before the tensors before it are converted.
func TestReadWeightsChecksDTypesFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), WeightsFile)
	if err := safetensors.Write(path, []safetensors.Tensor{
		{Name: "a.lora_A.weight", DType: safetensors.BF16, Shape: []int{4, junkBytes / 2 / 4}, Data: make([]byte, junkBytes)},
		{Name: "z.lora_A.weight", DType: safetensors.I8, Shape: []int{1}, Data: []byte{1}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	n := allocated(func() { _, err = ReadWeights(path) })
	if !errors.Is(err, safetensors.ErrUnsupportedDType) || !strings.Contains(err.Error(), `"z.lora_A.weight"`) {
		t.Errorf("I8 tensor: %v; want ErrUnsupportedDType naming z.lora_A.weight", err)
	}
	if n > allocLimit {
		t.Errorf("allocated %d bytes before refusing the file (limit %d)", n, allocLimit)
	}
}

// TestLoadAdapterAcceptsFixtures: the header check refuses nothing that
// PEFT wrote (the golden fixtures, before and after training).
func TestLoadAdapterAcceptsFixtures(t *testing.T) {
	for _, dir := range fixtureDirs {
		for _, sub := range []string{"adapter_init", "adapter_after"} {
			if _, w, err := LoadAdapter(filepath.Join(dir, sub)); err != nil || len(w) == 0 {
				t.Errorf("%s/%s: %d tensors, %v", dir, sub, len(w), err)
			}
		}
	}
}

// TestLoadRefusesAnotherWidthFromTheHeader: an A matrix of the config's
// rank whose width is not the model's (16 MiB of it) is a file only this
// model refuses: Load checks it against the model from the header, before
// converting anything.
func TestLoadRefusesAnotherWidthFromTheHeader(t *testing.T) {
	const a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
	wide := safetensors.Tensor{Name: a, DType: safetensors.BF16, Shape: []int{4, junkBytes / 2 / 4}, Data: make([]byte, junkBytes)}
	dir := fixtureAdapterWith(t, func(key string) bool { return key != a }, wide)
	m := loadFixture(t, nn.LoadOptions{})
	var err error
	n := allocated(func() { _, err = Load(m, dir, "x") })
	if !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), "layers.0.self_attn.q_proj.lora_A") {
		t.Errorf("a wide lora_A: %v; want an ErrAdapterMismatch naming it", err)
	}
	if n > allocLimit {
		t.Errorf("allocated %d bytes before refusing the file (limit %d): the tensor was converted", n, allocLimit)
	}
}
