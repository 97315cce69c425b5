package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spJSON returns testdata/sp-bpe/tokenizer.json as a map to edit.
func spJSON(t testing.TB) map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/sp-bpe/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func fromMap(t testing.TB, m map[string]any, cfg *Config) (*Tokenizer, error) {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return FromJSON(data, cfg)
}

func model(m map[string]any) map[string]any { return m["model"].(map[string]any) }

// TestMalformedTokenizerJSON: every malformed or unsupported file is an
// error naming the field (and wrapping ErrUnsupported where it is a
// feature we lack), never a panic.
func TestMalformedTokenizerJSON(t *testing.T) {
	cases := []struct {
		name        string
		edit        func(m map[string]any)
		field       string
		unsupported bool
	}{
		{"model missing", func(m map[string]any) { delete(m, "model") }, "model", false},
		{"model not an object", func(m map[string]any) { m["model"] = 3 }, "model", false},
		{"Unigram", func(m map[string]any) { model(m)["type"] = "Unigram" }, "model", true},
		{"WordPiece", func(m map[string]any) { model(m)["type"] = "WordPiece" }, "model", true},
		{"vocab not a map", func(m map[string]any) { model(m)["vocab"] = []any{1} }, "model.vocab", false},
		{"negative id", func(m map[string]any) { model(m)["vocab"].(map[string]any)["x"] = -4 }, "model.vocab", false},
		{"duplicate id", func(m map[string]any) { model(m)["vocab"].(map[string]any)["qq"] = 5 }, "model.vocab", false},
		{"empty token", func(m map[string]any) { model(m)["vocab"].(map[string]any)[""] = 1043 + 1 }, "model.vocab", false},
		{"merge unknown token", func(m map[string]any) {
			model(m)["merges"] = append(model(m)["merges"].([]any), []any{"qqq", "zzz"})
		}, "model.merges[700]", false},
		{"merge without space", func(m map[string]any) { model(m)["merges"] = []any{"ab"} }, "model.merges[0]", false},
		{"merge of three", func(m map[string]any) { model(m)["merges"] = []any{[]any{"a", "b", "c"}} }, "model.merges[0]", false},
		{"merges not a list", func(m map[string]any) { model(m)["merges"] = "x" }, "model.merges", false},
		{"unk not in vocab", func(m map[string]any) { model(m)["unk_token"] = "<nope>" }, "model.unk_token", false},
		{"dropout", func(m map[string]any) { model(m)["dropout"] = 0.1 }, "model", true},
		{"byte_fallback not bool", func(m map[string]any) { model(m)["byte_fallback"] = "yes" }, "model.byte_fallback", false},
		{"unknown normalizer", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Precompiled"} }, "normalizer", true},
		{"normalizer without type", func(m map[string]any) { m["normalizer"] = map[string]any{} }, "normalizer", false},
		{"bad regex", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(unclosed"}, "behavior": "Isolated"}
		}, "pre_tokenizer.pattern", false},
		{"bad pattern", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Glob": "*"}}
		}, "pre_tokenizer.pattern", false},
		{"bad behavior", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "Sideways"}
		}, "pre_tokenizer.behavior", false},
		{"nested bad pre-tokenizer", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Digits"}, map[string]any{"type": "UnicodeScripts"}}}
		}, "pre_tokenizer.pretokenizers[1]", true},
		{"ByteLevel not last", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "ByteLevel"}, map[string]any{"type": "Digits"}}}
		}, "pre_tokenizer.pretokenizers[0]", true},
		{"metaspace replacement", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "ab"}
		}, "pre_tokenizer.replacement", false},
		{"prepend scheme", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "prepend_scheme": "sometimes"}
		}, "pre_tokenizer.prepend_scheme", false},
		{"unknown decoder", func(m map[string]any) { m["decoder"] = map[string]any{"type": "CTC"} }, "decoder", true},
		{"decoder strip content", func(m map[string]any) {
			m["decoder"] = map[string]any{"type": "Strip", "content": "", "start": 1, "stop": 0}
		}, "decoder.content", false},
		{"unknown post-processor", func(m map[string]any) { m["post_processor"] = map[string]any{"type": "Mystery"} }, "post_processor", true},
		{"template unknown special", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<bos>", "type_id": 0}}},
				"special_tokens": map[string]any{}}
		}, "post_processor.single[0].SpecialToken.id", false},
		{"template ids and tokens differ", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{},
				"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []any{1, 2}, "tokens": []any{"<s>"}}}}
		}, "post_processor.special_tokens.<s>", false},
		{"roberta pair", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "RobertaProcessing", "cls": []any{"<s>"}, "sep": []any{"</s>", 2}}
		}, "post_processor.cls", false},
		{"bert special outside the vocabulary", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "BertProcessing", "cls": []any{"[CLS]", 1 << 20}, "sep": []any{"</s>", 2}}
		}, "post_processor", false},
		{"template special outside the vocabulary", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "Sequence", "processors": []any{
				map[string]any{"type": "ByteLevel"},
				map[string]any{"type": "TemplateProcessing",
					"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<x>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
					"special_tokens": map[string]any{"<x>": map[string]any{"id": "<x>", "ids": []any{-1}, "tokens": []any{"<x>"}}}}}}
		}, "post_processor", false},
		{"added token empty", func(m map[string]any) { m["added_tokens"] = []any{map[string]any{"id": 5, "content": ""}} }, "added_tokens[0]", false},
		{"added token bad id", func(m map[string]any) { m["added_tokens"] = []any{map[string]any{"id": "five", "content": "x"}} }, "added_tokens[0]", false},
		{"added tokens not a list", func(m map[string]any) { m["added_tokens"] = map[string]any{} }, "added_tokens", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := spJSON(t)
			c.edit(m)
			_, err := fromMap(t, m, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), c.field+":") && !strings.Contains(err.Error(), " "+c.field+":") {
				t.Errorf("error %q does not name %s", err, c.field)
			}
			if errors.Is(err, ErrUnsupported) != c.unsupported {
				t.Errorf("errors.Is(ErrUnsupported) = %v for %q", !c.unsupported, err)
			}
		})
	}
	for _, bad := range []string{"", "{", "[]", "null", `{"model": null}`, "\x00"} {
		if _, err := FromJSON([]byte(bad), nil); err == nil {
			t.Errorf("FromJSON(%q) succeeded", bad)
		}
	}
	if _, err := Load("testdata/no-such-folder"); err == nil || !strings.Contains(err.Error(), "no-such-folder") {
		t.Errorf("Load of a missing folder: %v", err)
	}
}

// TestAddedTokenFlags checks lstrip, rstrip, single_word and normalized the
// way tokenizers' AddedVocabulary applies them.
func TestAddedTokenFlags(t *testing.T) {
	m := spJSON(t)
	added := m["added_tokens"].([]any)
	tok := func(id int, content string, flags ...string) map[string]any {
		a := map[string]any{"id": id, "content": content, "special": true}
		for _, f := range flags {
			a[f] = true
		}
		return a
	}
	m["added_tokens"] = append(added,
		tok(2000, "<L>", "lstrip"), tok(2001, "<R>", "rstrip"), tok(2002, "wd", "single_word"),
		tok(2003, "<N>", "normalized"), tok(2004, "<Longer>"), tok(2005, "<Long"))
	tk, err := fromMap(t, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text string
		id   int
		span [2]int // character offsets of the added token
		ok   bool   // whether it is matched at all
	}{
		{"a  <L>b", 2000, [2]int{1, 6}, true},  // swallows the spaces on its left
		{"a<R>   b", 2001, [2]int{1, 7}, true}, // and on its right
		{"xwdy", 2002, [2]int{}, false},        // inside a word: not a token
		{"x wd y", 2002, [2]int{2, 4}, true},
		{"wd.", 2002, [2]int{0, 2}, true},
		// Normalized tokens are searched in normalized text as the normalizer
		// writes them: here "▁<N>" (Prepend), so the space before belongs to it.
		{"a <N> b", 2003, [2]int{1, 5}, true},
		{"<Longer>x", 2004, [2]int{0, 8}, true}, // leftmost-longest
		{"<Longe", 2005, [2]int{0, 5}, true},    // the shorter one where the longer does not fit
	}
	for _, c := range cases {
		enc, err := tk.Encode(c.text, false)
		if err != nil {
			t.Fatal(err)
		}
		found := -1
		for i, id := range enc.IDs {
			if id == c.id {
				found = i
			}
		}
		if (found >= 0) != c.ok {
			t.Errorf("%q: token %d matched=%v, want %v (%v)", c.text, c.id, found >= 0, c.ok, enc.Tokens)
			continue
		}
		if c.ok && enc.Offsets[found] != c.span {
			t.Errorf("%q: offsets %v, want %v (%v %v)", c.text, enc.Offsets[found], c.span, enc.Tokens, enc.Offsets)
		}
	}
}

// TestEmptyMatchingPatterns: patterns that match the empty string must not
// loop or produce empty pieces.
func TestEmptyMatchingPatterns(t *testing.T) {
	for _, re := range []string{"a*", "(?=a)", "", `\b`, "x?"} {
		for _, beh := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
			m := spJSON(t)
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": beh}
			tok, err := fromMap(t, m, nil)
			if err != nil {
				t.Fatalf("%q %s: %v", re, beh, err)
			}
			enc, err := tok.Encode("ba aab", false)
			if err != nil {
				t.Fatalf("%q %s: %v", re, beh, err)
			}
			for i, o := range enc.Offsets {
				if o[0] >= o[1] {
					t.Errorf("%q %s: empty token %q at %v", re, beh, enc.Tokens[i], o)
				}
			}
		}
	}
}

// TestVocabErrorsNameTheFile: an id outside the vocabulary, in Decode or
// in an added token past the model's embedding rows, names the tokenizer
// file and the token.
func TestVocabErrorsNameTheFile(t *testing.T) {
	dir := filepath.Join("testdata", "tiny-base")
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokenizer.json")
	if _, err := tok.Decode([]int{1 << 27}, false); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("decode: %v", err)
	}
	if err := tok.CheckVocab(tok.VocabSize()); err != nil {
		t.Errorf("matching model: %v", err)
	}
	var last *AddedToken
	for _, a := range tok.added {
		if last == nil || a.ID > last.ID {
			last = a
		}
	}
	if last == nil {
		t.Fatal("tiny-base has no added tokens")
	}
	err = tok.CheckVocab(last.ID)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("%q has id %d", last.Content, last.ID)) {
		t.Errorf("added token past the model: %v", err)
	}
	if err := tok.CheckVocab(10); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("small model: %v", err)
	}
}
