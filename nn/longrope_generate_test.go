package nn

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// phi3CrossConfig is a tiny Phi-3 whose original_max_position_embeddings
// (8) a short greedy generation passes, with long factors far from the
// short ones. testdata/fixtures/phi3-tiny is the same situation against
// transformers itself (original 16): its tokens are transformers' forward
// over the whole sequence at each step, which this test's reference
// computes too. (transformers 5.12's generate() gets the crossing wrong:
// it drops the cache but passes only the newest token; make_fixtures.py
// keeps what it gave in meta.json.)
const phi3CrossConfig = `{"model_type": "phi3", "vocab_size": 96, "hidden_size": 64, "intermediate_size": 96,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "max_position_embeddings": 64, "original_max_position_embeddings": 8,
  "rope_scaling": {"type": "longrope", "short_factor": [1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 1.8, 2.0],
    "long_factor": [1.0, 1.5, 2.5, 4.0, 6.0, 9.0, 12.0, 16.0]},
  "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "sliding_window": null,
  "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}`

// greedyWithoutCache is transformers' Phi-3 generation once it has dropped
// its cache at the crossing: each step a full forward over the sequence so
// far, whose seq_len picks the short factors up to
// original_max_position_embeddings tokens and the long ones past it.
func greedyWithoutCache(t *testing.T, m *Model, prompt []int, n int) []int {
	t.Helper()
	seq := slices.Clone(prompt)
	var out []int
	for range n {
		ids := make([]int64, len(seq))
		for i, v := range seq {
			ids[i] = int64(v)
		}
		o, err := m.Forward(nil, Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		V := m.Config.VocabSize
		tok := sample(o.Logits.Value.F64()[(len(seq)-1)*V:len(seq)*V], GenerateOptions{}, nil)
		out = append(out, tok)
		seq = append(seq, tok)
	}
	return out
}

// TestGenerateLongRopeCrossing: greedy generation that passes
// original_max_position_embeddings (at 9 tokens here) gives the tokens of
// full forwards over the growing sequence, as transformers does by dropping
// its cache at the crossing and recomputing on the long factors. Keeping
// the keys cached with the short factors gave other tokens for the first
// two prompts (crossing in a decode step, and at the first new token); the
// third, whose prefill is already past the crossing, guards that no
// recompute happens there.
func TestGenerateLongRopeCrossing(t *testing.T) {
	m := loadRandom(t, phi3CrossConfig, 3)
	if r := m.Config.Rope; r.Type != "longrope" || r.OriginalMaxPositions != 8 {
		t.Fatalf("rope %+v, want longrope with original 8", r)
	}
	for _, prompt := range [][]int{
		{3, 50, 22, 71},                   // crossing in the decode steps
		{1, 17, 42, 5, 88, 60, 31, 9},     // the first new token crosses
		{1, 17, 42, 5, 88, 60, 31, 9, 77}, // prefill already on the long factors
	} {
		const n = 14
		want := greedyWithoutCache(t, m, prompt, n)
		got, err := m.Generate(prompt, GenerateOptions{MaxNewTokens: n})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("prompt of %d tokens: generated %v, full forwards give %v", len(prompt), got, want)
		}
	}
}
