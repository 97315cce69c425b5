package tokenizer

import (
	"errors"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/ftune/ftune/internal/testutil"
)

// FuzzEncode: any text encodes without panicking (invalid UTF-8 is
// ErrInvalidUTF8), decodes, streams, and byte-level tokenizers round-trip.
// Seeds: extraTexts plus testdata/fuzz/FuzzEncode.
func FuzzEncode(f *testing.F) {
	for _, s := range extraTexts {
		f.Add(s)
	}
	toks := map[string]*Tokenizer{}
	for _, name := range []string{"tiny-base", "sp-bpe", "sp-metaspace", "qwen3"} {
		toks[name] = mustLoad(f, name)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, tok := range toks {
			enc, err := tok.Encode(s, true)
			if !utf8.ValidString(s) {
				if !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("%s: invalid UTF-8 %q: %v", name, s, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %q: %v", name, s, err)
			}
			if len(enc.IDs) != len(enc.Tokens) || len(enc.IDs) != len(enc.Offsets) {
				t.Fatalf("%s: lengths differ", name)
			}
			got, err := tok.Decode(enc.IDs, false)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if name == "tiny-base" && got != s {
				t.Fatalf("%s: round trip of %q gave %q", name, s, got)
			}
			d := tok.NewStreamDecoder(true)
			for _, id := range enc.IDs {
				piece, err := d.Next(id)
				if err != nil || !utf8.ValidString(piece) {
					t.Fatalf("%s: stream: %q %v", name, piece, err)
				}
			}
		}
	})
}

// fuzzTokenizerSeeds are small tokenizer.json files touching every
// component type, for FuzzFromJSON to mutate.
var fuzzTokenizerSeeds = []string{
	`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġa":4},"merges":["a b","Ġ a"]},` +
		`"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true,"use_regex":true},"decoder":{"type":"ByteLevel"},` +
		`"post_processor":{"type":"ByteLevel","trim_offsets":true},"added_tokens":[{"id":5,"content":"<|x|>","special":true,"lstrip":true,"rstrip":true}]}`,
	`{"model":{"type":"BPE","vocab":{"<unk>":0,"▁":1,"a":2,"▁a":3,"<0x41>":4,"<0xC3>":5,"<0xA9>":6},"merges":[["▁","a"]],"byte_fallback":true,"unk_token":"<unk>","fuse_unk":true},` +
		`"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},` +
		`"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},` +
		`"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<unk>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<unk>":{"id":"<unk>","ids":[0],"tokens":["<unk>"]}}}}`,
	`{"model":{"type":"BPE","vocab":{"[UNK]":0,"a":1,"##b":2,"ab":3},"merges":["a ##b"],"continuing_subword_prefix":"##","unk_token":"[UNK]"},` +
		`"normalizer":{"type":"BertNormalizer","lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},` +
		`"decoder":{"type":"WordPiece","prefix":"##"},"post_processor":{"type":"BertProcessing","cls":["[UNK]",0],"sep":["[UNK]",0]}}`,
	`{"model":{"type":"BPE","vocab":{"a</w>":0,"b":1,"1":2},"merges":[],"end_of_word_suffix":"</w>"},` +
		`"normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},{"type":"StripAccents"},{"type":"Strip"},{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "}]},` +
		`"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Contiguous"},{"type":"Split","pattern":{"Regex":"\\s+(?!\\S)"},"behavior":"MergedWithPrevious","invert":true}]},` +
		`"decoder":{"type":"BPEDecoder"},"post_processor":{"type":"RobertaProcessing","cls":["a</w>",0],"sep":["b",1],"trim_offsets":true}}`,
	`{"model":{"type":"BPE","vocab":{"▁":0,"x":1,"▁x":2},"merges":["▁ x"],"ignore_merges":true},` +
		`"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},{"type":"CharDelimiterSplit","delimiter":"x"},{"type":"Whitespace"}]},` +
		`"decoder":{"type":"Metaspace","replacement":"▁","add_prefix_space":true},"normalizer":{"type":"NFD"}}`,
}

// FuzzFromJSON: no tokenizer.json, however broken, panics while loading or
// encoding.
func FuzzFromJSON(f *testing.F) {
	for _, s := range fuzzTokenizerSeeds {
		f.Add([]byte(s), "a ab éx 12,3 <|x|>")
	}
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		tok, err := FromJSON(data, nil)
		if err != nil {
			return
		}
		enc, err := tok.Encode(text, true)
		if err != nil {
			return
		}
		if _, err := tok.Decode(enc.IDs, false); err != nil {
			t.Fatalf("decode of encoded ids: %v", err)
		}
	})
}

func TestFuzzSeedsLoad(t *testing.T) {
	for i, s := range fuzzTokenizerSeeds {
		tok, err := FromJSON([]byte(s), nil)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if _, err := tok.Encode("a ab éx 12,3 <|x|>", true); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}

// AfterTests are run by TestMain once every test is done: the external
// test package's family tests share decompressed folders (families_test.go).
var AfterTests []func()

// TestMain runs this package's tests and fuzz workers (which inherit it)
// under testutil.TestMemory of address space: the package reads untrusted
// input, and a regression that allocates without bound must stop there.
func TestMain(m *testing.M) {
	testutil.MustLimitMemory(testutil.TestMemory)
	code := m.Run()
	for _, f := range AfterTests {
		f()
	}
	os.Exit(code)
}

func TestUnderMemoryLimit(t *testing.T) { testutil.CheckMemoryLimited(t) }
