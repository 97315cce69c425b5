package gguf

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestMixTypes holds the IQ4 and 32-value mixes to llama-quantize's type
// maps (testdata/kquants/mix-MODEL-FTYPE[-imatrix].json; the k-quant ones
// are TestKQuantMixTypes'): IQ4_XS rows that are not whole 256-value blocks
// in IQ4_NL, the head in Q6_K (Q8_0 when its rows are not whole blocks),
// attn_v in Q5_K where four query heads share a KV head (gemma3-tiny), the
// first eighth of ffn_down in Q5_K only without an importance matrix
// (gemma2-tiny's 46 layers: 5 of them) in the IQ4 mixes, and in Q4_1 or
// Q5_1 only with one in Q4_0 and Q5_0.
func TestMixTypes(t *testing.T) {
	im := &Imatrix{Entries: map[string]ImatrixEntry{}}
	for _, c := range []struct {
		model   string
		dir     func(testing.TB) string
		ft      FileType
		imatrix bool
	}{
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileIQ4_NL, false},
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileIQ4_XS, false},
		{"phi3-tiny", phi3Tiny, FileIQ4_NL, false},
		{"phi3-tiny", phi3Tiny, FileIQ4_XS, false},
		{"gemma2-tiny", gemma2Tiny, FileIQ4_XS, false},
		{"gemma2-tiny", gemma2Tiny, FileIQ4_XS, true},
		{"gemma3-tiny", gemma3Tiny, FileIQ4_XS, false},
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileQ4_0, false},
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileQ4_1, false},
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileQ5_0, false},
		{"tiny-base", func(testing.TB) string { return tinyBase }, FileQ5_1, false},
		{"gemma2-tiny", gemma2Tiny, FileQ4_0, false},
		{"gemma2-tiny", gemma2Tiny, FileQ4_0, true},
		{"gemma2-tiny", gemma2Tiny, FileQ4_1, true},
		{"gemma2-tiny", gemma2Tiny, FileQ5_0, true},
		{"gemma2-tiny", gemma2Tiny, FileQ5_1, true},
	} {
		name := "mix-" + c.model + "-" + c.ft.String()
		if c.imatrix {
			name += "-imatrix"
		}
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "kquants", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			m, err := nn.Load(c.dir(t), nn.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			opt := Options{FileType: c.ft}
			if c.imatrix {
				// The plan depends only on whether there is a matrix; one
				// entry keeps BuildModel from refusing it as another
				// model's.
				im.Entries["blk.0.ffn_down.weight"] = ImatrixEntry{SumSquares: make([]float32, m.Config.IntermediateSize), Counts: []float32{1}}
				opt.Importance = im
			}
			bl, err := BuildModel(context.Background(), m, nil, opt, c.model)
			if err != nil {
				t.Fatal(err)
			}
			if len(bl.tensors) != len(want) {
				t.Fatalf("%d tensors, llama-quantize's file has %d", len(bl.tensors), len(want))
			}
			for _, ti := range bl.tensors {
				if got := ti.typ.String(); got != want[ti.name] {
					t.Errorf("%s is %s, llama-quantize makes it %s", ti.name, got, want[ti.name])
				}
			}
		})
	}
}

// TestTypeOverrideMixTypes holds --output-tensor-type and
// --token-embedding-type to llama-quantize's type maps
// (mix-MODEL-Q4_K_M-…json): the head and the embeddings take the types
// given; tied embeddings (tiny-base, qwen3-tiny) take the head's unless
// given their own, through the mix, so that rows of 64 fall back from
// Q4_K to Q5_0 as llama-quantize makes them. The same types for an untied
// head of 64-value rows, which llama-quantize aborts on, are refused.
func TestTypeOverrideMixTypes(t *testing.T) {
	q8, f16, q4k := Q8_0, F16, Q4_K
	for _, c := range []struct {
		model             string
		dir               func(testing.TB) string
		output, embedding *TensorType
		golden            string
	}{
		{"tiny-base", func(testing.TB) string { return tinyBase }, &q8, &q8, "Q4_K_M-output-Q8_0-embedding-Q8_0"},
		{"tiny-base", func(testing.TB) string { return tinyBase }, &q8, nil, "Q4_K_M-output-Q8_0"},
		{"tiny-base", func(testing.TB) string { return tinyBase }, nil, &f16, "Q4_K_M-embedding-F16"},
		{"phi3-tiny", phi3Tiny, &q8, &q8, "Q4_K_M-output-Q8_0-embedding-Q8_0"},
		{"phi3-tiny", phi3Tiny, &q8, nil, "Q4_K_M-output-Q8_0"},
		{"phi3-tiny", phi3Tiny, nil, &f16, "Q4_K_M-embedding-F16"},
		{"qwen3-tiny", qwen3Tiny, &q4k, nil, "Q4_K_M-output-Q4_K"},
		{"qwen3-tiny", qwen3Tiny, &q4k, &q8, "Q4_K_M-output-Q4_K-embedding-Q8_0"},
	} {
		name := "mix-" + c.model + "-" + c.golden
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "kquants", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			m, err := nn.Load(c.dir(t), nn.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bl, err := BuildModel(context.Background(), m, nil, Options{FileType: FileQ4_K_M, OutputType: c.output, EmbeddingType: c.embedding}, c.model)
			if err != nil {
				t.Fatal(err)
			}
			if len(bl.tensors) != len(want) {
				t.Fatalf("%d tensors, llama-quantize's file has %d", len(bl.tensors), len(want))
			}
			for _, ti := range bl.tensors {
				if got := ti.typ.String(); got != want[ti.name] {
					t.Errorf("%s is %s, llama-quantize makes it %s", ti.name, got, want[ti.name])
				}
			}
		})
	}
	m, err := nn.Load(phi3Tiny(t), nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{FileType: FileQ4_K_M, OutputType: &q4k}, {FileType: FileQ4_K_M, EmbeddingType: &q4k}} {
		if _, err := BuildModel(context.Background(), m, nil, o, "phi3-tiny"); err == nil || !strings.Contains(err.Error(), "rows of 64 values are not whole Q4_K blocks") {
			t.Errorf("Q4_K for phi3-tiny's 64-value rows: %v, want a refusal", err)
		}
	}
}
