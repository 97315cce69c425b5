package nn

import (
	"errors"
	"strings"

	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

func TestSampleGreedyAndFilters(t *testing.T) {
	logits := []float64{0.1, 2.0, 1.9, -1, 0.5}
	if got := sample(logits, GenerateOptions{}, nil); got != 1 {
		t.Fatalf("greedy picked %d, want 1", got)
	}
	// top-k 2 may only return the two best tokens; both must appear.
	seen := map[int]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		seen[sample(logits, GenerateOptions{Temperature: 1, TopK: 2}, r)]++
	}
	if len(seen) != 2 || seen[1] == 0 || seen[2] == 0 {
		t.Fatalf("top-k 2 sampled %v", seen)
	}
	// Their frequencies follow softmax over the two: e^2 / (e^2 + e^1.9).
	p1 := math.Exp(2) / (math.Exp(2) + math.Exp(1.9))
	if f := float64(seen[1]) / 2000; math.Abs(f-p1) > 0.05 {
		t.Fatalf("token 1 sampled with frequency %.3f, want ≈ %.3f", f, p1)
	}
	// top-p 0.3 keeps only the most likely token here (p ≈ 0.39 ≥ 0.3).
	for i := 0; i < 100; i++ {
		if got := sample(logits, GenerateOptions{Temperature: 1, TopP: 0.3}, r); got != 1 {
			t.Fatalf("top-p 0.3 sampled %d", got)
		}
	}
}

func TestGenerateSeedAndStop(t *testing.T) {
	m, err := Load("../testdata/fixtures/llama-tiny", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opt := GenerateOptions{MaxNewTokens: 12, Temperature: 0.9, TopP: 0.95, Seed: 42}
	a, err := m.Generate([]int{1, 5, 9}, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Generate([]int{1, 5, 9}, opt)
	if len(a) != 12 || len(b) != 12 {
		t.Fatalf("generated %d and %d tokens, want 12", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different samples: %v vs %v", a, b)
		}
	}
	// Stopping on the 4th sampled token ends right after it.
	opt.StopTokens = []int{a[3]}
	c, _ := m.Generate([]int{1, 5, 9}, opt)
	stop := 0
	for i, x := range a {
		if x == a[3] {
			stop = i
			break
		}
	}
	if len(c) != stop+1 {
		t.Fatalf("stop token %d: generated %v, want %d tokens", a[3], c, stop+1)
	}
	if _, err := m.Generate([]int{1, 5000}, opt); err == nil {
		t.Fatal("a prompt token outside the vocabulary was accepted")
	}
}

// A prompt that fills the context is refused, and generation stops at the
// context's end instead of running past the positions the model knows.
func TestGenerateRespectsContext(t *testing.T) {
	m, err := Load("../testdata/fixtures/llama-tiny", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Config.MaxPositions = 8
	if _, err := m.Generate(make([]int, 8), GenerateOptions{}); !errors.Is(err, ErrContextFull) {
		t.Fatalf("prompt of 8 tokens in a context of 8: err = %v, want ErrContextFull", err)
	}
	out, err := m.Generate(make([]int, 5), GenerateOptions{MaxNewTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("5 prompt tokens in a context of 8 gave %d new tokens, want 3", len(out))
	}
}

// TestGenerateRefusesBadSampling: out-of-range and NaN sampling settings
// are refused before a token is drawn.
func TestGenerateRefusesBadSampling(t *testing.T) {
	m, err := Load("../testdata/fixtures/llama-tiny", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	for _, opt := range []GenerateOptions{{Temperature: -1}, {Temperature: nan}, {TopP: 1.5}, {TopP: -0.1}, {TopP: nan}, {TopK: -1}} {
		if _, err := m.Generate([]int{1, 2}, opt); err == nil || !strings.Contains(err.Error(), "required") {
			t.Errorf("%+v: err = %v, want the settings refused", opt, err)
		}
	}
	for _, opt := range []GenerateOptions{{RepetitionPenalty: -1}, {RepetitionPenalty: nan}, {RepetitionPenalty: math.Inf(1)}} {
		if _, err := m.Generate([]int{1, 2}, opt); err == nil || !strings.Contains(err.Error(), "repetition penalty") {
			t.Errorf("%+v: err = %v, want the penalty refused", opt, err)
		}
	}
	if _, err := m.Generate([]int{1, 2}, GenerateOptions{Temperature: math.Inf(1), MaxNewTokens: 2}); err != nil {
		t.Errorf("an infinite temperature (uniform sampling) is a valid limit: %v", err)
	}
}

// NaN weights give an error naming non-finite logits, not a token picked
// from garbage.
func TestGenerateNamesNonFiniteLogits(t *testing.T) {
	m, err := Load("../testdata/fixtures/llama-tiny", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := m.Layers[0].MLP.Down.Weight.Value
	vals := w.F32()
	vals[0] = float32(math.NaN())
	w.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, w.Shape()...).To(w.DType()))
	out, err := m.Generate([]int{1, 5, 9}, GenerateOptions{MaxNewTokens: 4})
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN weight: out %v, err %v; want ErrNonFinite naming NaN", out, err)
	}
}

type fakeVocab map[string]int

func (v fakeVocab) EOS() (int, bool) { id, ok := v["<eos>"]; return id, ok }
func (v fakeVocab) TokenToID(s string) (int, bool) {
	id, ok := v[s]
	return id, ok
}

func TestStopTokens(t *testing.T) {
	m := &Model{Config: Config{EOSTokenIDs: []int{2}}}
	got := m.StopTokens(fakeVocab{"<eos>": 7, "<|im_end|>": 9})
	if len(got) != 3 || got[0] != 2 || got[1] != 7 || got[2] != 9 {
		t.Fatalf("StopTokens = %v, want [2 7 9]", got)
	}
	if got := m.StopTokens(fakeVocab{}); len(got) != 1 || got[0] != 2 {
		t.Fatalf("StopTokens without tokenizer EOS = %v, want [2]", got)
	}
}
