package nn

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTokenIDsOutsideTheVocabulary: a bos or eos id that config.json sets
// must be a token of the model (ftune pads with the EOS id when the
// tokenizer has no pad token, and an id outside the vocabulary would fail
// in the embedding naming neither file nor key); a negative one is refused
// too, but -1 for bos and pad still means none (early LLaMA conversions
// wrote "pad_token_id": -1). A pad id at or past vocab_size is kept: it is
// never used as a token.
func TestTokenIDsOutsideTheVocabulary(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		want       []string // substrings of the error; nil: accepted
	}{
		{"eos past the vocabulary", `"eos_token_id": 99999, "pad_token_id": null`, []string{"config.json", "eos_token_id 99999", "vocab_size 64"}},
		{"eos = vocab_size", `"eos_token_id": 64`, []string{"eos_token_id 64", "not a token"}},
		{"negative eos", `"eos_token_id": -5`, []string{"config.json", "eos_token_id -5", "negative"}},
		{"eos -1", `"eos_token_id": -1`, []string{"eos_token_id -1", "negative"}},
		{"one of several eos", `"eos_token_id": [2, 64]`, []string{"eos_token_id[1] 64"}},
		{"negative in a list", `"eos_token_id": [-3, 2]`, []string{"eos_token_id[0] -3"}},
		{"bos past the vocabulary", `"bos_token_id": 100`, []string{"bos_token_id 100", "vocab_size 64"}},
		{"negative bos", `"bos_token_id": -2`, []string{"bos_token_id -2", "negative"}},
		{"negative pad", `"pad_token_id": -7`, []string{"pad_token_id -7", "negative"}},
		// decapoda-research/llama-7b-hf and other transformers 4.28
		// conversions: bos 0, eos 1, pad -1.
		{"early LLaMA conversion", `"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": -1`, nil},
		{"bos -1 is none", `"bos_token_id": -1`, nil},
		{"pad = vocab_size kept", `"pad_token_id": 64`, nil},
		{"pad far past kept", `"pad_token_id": 99999`, nil},
		{"last token", `"bos_token_id": 63, "eos_token_id": [63, 0]`, nil},
		{"nulls", `"bos_token_id": null, "eos_token_id": null, "pad_token_id": null`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := `{"model_type": "llama", ` + sizes + `, ` + tc.keys + `}`
			_, err := ParseConfig([]byte(js))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("%s: %v", js, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: accepted", js)
			}
			if errors.Is(err, ErrUnsupported) {
				t.Errorf("%v wraps ErrUnsupported: the file is wrong, not unsupported", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestTokenIDsFamilyDefaults: a family's default that a small hand-written
// config.json's vocabulary does not hold is kept, as transformers keeps it
// (the key is absent: no file set it); the same id set in config.json is
// refused.
func TestTokenIDsFamilyDefaults(t *testing.T) {
	c := mustParse(t, `{"model_type": "phi3", `+sizes+`}`)
	if !slices.Equal(c.EOSTokenIDs, []int{32000}) || c.PadTokenID != 32000 {
		t.Errorf("phi3 defaults: eos %v pad %d, want Phi3Config's 32000 and 32000", c.EOSTokenIDs, c.PadTokenID)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "phi3", ` + sizes + `, "eos_token_id": 32000}`)); err == nil || !strings.Contains(err.Error(), "eos_token_id 32000") {
		t.Errorf("phi3 with eos_token_id 32000 set on a vocabulary of 64: err %v, want it refused", err)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "smollm3", ` + sizes + `, "bos_token_id": 128000}`)); err == nil || !strings.Contains(err.Error(), "bos_token_id 128000") {
		t.Errorf("smollm3 with bos_token_id 128000 set on a vocabulary of 64: err %v, want it refused", err)
	}
}

// TestTokenIDsValidate: a Config built in code is held to the same rules.
func TestTokenIDsValidate(t *testing.T) {
	base := mustParse(t, `{"model_type": "llama", `+sizes+`}`)
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"eos past", func(c *Config) { c.EOSTokenIDs = []int{2, 64} }, "eos_token_id[1] 64"},
		{"eos negative", func(c *Config) { c.EOSTokenIDs = []int{-1} }, "eos_token_id -1"},
		{"bos past", func(c *Config) { c.BOSTokenID = 70 }, "bos_token_id 70"},
		{"pad negative", func(c *Config) { c.PadTokenID = -2 }, "pad_token_id -2"},
	} {
		c := base
		c.EOSTokenIDs = slices.Clone(base.EOSTokenIDs)
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

// TestLoadConfigNamesTheTokenKey: through the file, the error names its
// path and the key (the auditor's case: eos 99999 on tiny-base's 4096).
func TestLoadConfigNamesTheTokenKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "config.json", `{"model_type": "llama", "vocab_size": 4096, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4, "eos_token_id": 99999}`)
	_, err := LoadConfig(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) || !strings.Contains(err.Error(), "eos_token_id 99999") || !strings.Contains(err.Error(), "vocab_size 4096") {
		t.Fatalf("eos_token_id 99999: err %v; want the file, the key and the vocabulary named", err)
	}
}

// TestPadFallback: padding falls back to the first end-of-sequence id the
// vocabulary holds; a family default outside a small vocabulary (kept by
// checkTokenIDs) is passed over, never fed to the embedding.
func TestPadFallback(t *testing.T) {
	for _, tc := range []struct {
		eos  []int
		want int
	}{{nil, 0}, {[]int{7}, 7}, {[]int{128001, 5}, 5}, {[]int{128001}, 0}, {[]int{64, 63}, 63}} {
		if got := (Config{VocabSize: 64, EOSTokenIDs: tc.eos}).PadFallback(); got != tc.want {
			t.Errorf("eos %v: pad fallback %d, want %d", tc.eos, got, tc.want)
		}
	}
}
