//go:build !devicecarry

// Left out of the device build (-tags devicecarry), as familytrain_test.go
// is: through the root package it links the embedded tiny-base model.

package parity

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// TestParityCUDALoadGenerate: ftune.Load on a GPU (LoadOptions.Device,
// what ftune generate --device passes) puts the model and the adapter it
// attaches on the GPU, at precision auto in bf16 (weights, activations,
// KV cache), and greedy generation gives the CPU float32 run's tokens. It
// ran on the CPU whatever it was asked. The adapter (random A and B, not
// the no-op init) changes every one of the CPU's tokens, so an adapter
// left off or applied wrong on the GPU changes the GPU's. Its seed and
// alpha were picked for margins: on the CPU each step's top two logits
// are 1.34, 1.20 and 0.60 apart (the base's 0.19 and 0.21 already stand
// bf16's noise in TestParityCUDABF16ActivationsGenerate), so bf16 rounding
// does not flip a token and a mismatch is a bug. Three tokens (the prompt,
// then two steps through the KV cache) keep it near 10 s under ptxsim.
func TestParityCUDALoadGenerate(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	adapter := randomAdapter(t)
	prompt := []int{5, 77, 301, 12, 999, 40, 7}
	gen := func(m *ftune.Model) []int {
		t.Helper()
		ids, err := m.Net.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 3})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	cpu, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{Adapter: adapter})
	if err != nil {
		t.Fatal(err)
	}
	want := gen(cpu)
	lora.Detach(cpu.Net)
	if base := gen(cpu); slices.Equal(base, want) {
		t.Fatalf("the adapter changes none of the CPU's tokens (%v): the test would not see it missing on the GPU", want)
	}
	var log strings.Builder
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{Adapter: adapter, Device: "cuda", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Net.Backend.(*cudabackend.Backend); !ok || m.Net.DType != tensor.BF16 {
		t.Fatalf("loaded on %s in %v, want the GPU in bf16 (precision auto)", m.Net.Backend.Device(), m.Net.DType)
	}
	for name, p := range m.Adapter.Params() {
		if _, ok := p.Value.Backend().(*cudabackend.Backend); !ok {
			t.Fatalf("adapter tensor %s is on %s, not the model's GPU", name, p.Value.Backend().Device())
		}
	}
	if !strings.Contains(log.String(), "precision bf16") {
		t.Errorf("Load's log does not say the device and precision:\n%s", log.String())
	}
	if got := gen(m); !slices.Equal(got, want) {
		t.Errorf("with the adapter, the GPU generated %v, the CPU %v", got, want)
	}
}

// randomAdapter saves an adapter on tiny-base whose A and B are random
// (an initialised one's B is zero: it would change nothing); seed 7 and
// alpha 64 give the margins above.
func randomAdapter(t *testing.T) string {
	t.Helper()
	dir, err := assets.Model(ftune.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	return loratest.SavedRandom(t, dir, 64, 7)
}
