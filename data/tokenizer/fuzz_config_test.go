package tokenizer

import (
	"os"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
)

// FuzzParseConfig: no tokenizer_config.json, however broken, panics while
// it is parsed or while a tokenizer built with it (special tokens,
// add_bos_token/add_eos_token) encodes and decodes. Seeds: this package's
// test tokenizers' configs.
func FuzzParseConfig(f *testing.F) {
	testutil.AddFileSeeds(f, 5, "testdata/*/tokenizer_config.json")
	tokJSON, err := os.ReadFile("testdata/tiny-base/tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		tok, err := FromJSON(tokJSON, cfg)
		if err != nil {
			return
		}
		enc, err := tok.Encode("Hello <|im_start|> world", true)
		if err != nil {
			t.Fatalf("encode with an accepted config: %v", err)
		}
		if _, err := tok.Decode(enc.IDs, true); err != nil {
			t.Fatalf("decode of encoded ids: %v", err)
		}
	})
}
