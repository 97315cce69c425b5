package prep_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// TestContentPartsTokenizeAsStrings: a conversation whose contents are
// lists of parts (OpenAI's, split mid-sentence and mid-word here), with
// its system message as OpenAI's developer role, is learnt token for
// token as the same conversation written with string contents and a
// system role: same ids, same labels, with tiny-base's tokenizer and
// template.
func TestContentPartsTokenizeAsStrings(t *testing.T) {
	tok, tmpl, eos := loadTinyBase(t)
	p := &prep.Preprocessor{Enc: hfEncoder{tok}, Tmpl: chatRenderer(tmpl), EOS: eos}
	dir := t.TempDir()
	files := map[string]string{
		"strings.jsonl": `{"messages": [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Capital of France? Just the city."}, {"role": "assistant", "content": "Paris"}, {"role": "user", "content": "And of Peru?"}, {"role": "assistant", "content": "Lima, of course."}]}`,
		"parts.jsonl":   `{"messages": [{"role": "developer", "content": [{"type": "input_text", "text": "Answer in one word."}]}, {"role": "user", "content": [{"type": "text", "text": "Capital of France? "}, {"type": "text", "text": "Just the city."}]}, {"role": "assistant", "content": [{"type": "output_text", "text": "Par"}, {"type": "output_text", "text": "is"}]}, {"role": "user", "content": "And of Peru?"}, {"role": "assistant", "content": [{"type": "text", "text": "Lima,"}, {"type": "text", "text": " of course."}]}]}`,
	}
	var got [2]prep.Tokenized
	for i, name := range []string{"strings.jsonl", "parts.jsonl"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(files[name]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		exs, _, err := format.ReadAll(path, format.Options{})
		if err != nil {
			t.Fatal(err)
		}
		toks, _, err := p.TokenizeAll(exs)
		if err != nil || len(toks) != 1 {
			t.Fatalf("%s: %d tokenized, %v", name, len(toks), err)
		}
		got[i] = toks[0]
	}
	if !slices.Equal(got[0].IDs, got[1].IDs) || !slices.Equal(got[0].Labels, got[1].Labels) {
		t.Fatalf("content parts tokenize otherwise than strings:\nstrings ids %v labels %v\nparts   ids %v labels %v", got[0].IDs, got[0].Labels, got[1].IDs, got[1].Labels)
	}
	learnt := 0
	for _, l := range got[1].Labels {
		if l != prep.IgnoreIndex {
			learnt++
		}
	}
	if learnt == 0 {
		t.Fatal("nothing learnt")
	}
}
