package tokenizer

import (
	"os"
	"reflect"
	"strings"
	"testing"

	tiktokenref "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// TestTiktokenMatchesReference compares our tiktoken encodings with
// tiktoken-go (the reference implementation of the same algorithm) line by
// line on the benchmark corpus and the extra texts.
func TestTiktokenMatchesReference(t *testing.T) {
	tiktokenref.SetBpeLoader(loader.NewOfflineLoader())
	corpus, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(corpus), "\n")
	texts = append(texts, extraTexts...)
	names := []string{"cl100k_base", "r50k_base"}
	if !testing.Short() {
		names = append(names, "o200k_base")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ours, err := Tiktoken(name)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := tiktokenref.GetEncoding(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range texts {
				enc, err := ours.Encode(text, false)
				if err != nil {
					t.Fatal(err)
				}
				want := ref.Encode(text, []string{"all"}, nil)
				if len(want) == 0 && len(enc.IDs) == 0 {
					continue
				}
				if !reflect.DeepEqual(enc.IDs, want) {
					t.Errorf("%q:\n got %v\nwant %v", text, enc.IDs, want)
					continue
				}
				got, err := ours.Decode(enc.IDs, false)
				if err != nil {
					t.Fatal(err)
				}
				if got != text {
					t.Errorf("decode %q: got %q", text, got)
				}
			}
		})
	}
}
