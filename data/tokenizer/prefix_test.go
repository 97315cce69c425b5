package tokenizer_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/testutil"
)

// prefixTokenizers loads every tokenizer the package's tests use: the
// folders of testdata and the model families' real ones.
func prefixTokenizers(t *testing.T) map[string]*tokenizer.Tokenizer {
	t.Helper()
	out := map[string]*tokenizer.Tokenizer{}
	for _, name := range []string{"tiny-base", "llama3-style", "qwen3", "sp-bpe", "sp-metaspace"} {
		tok, err := tokenizer.Load(testutil.Inflate(t, filepath.Join("testdata", name)))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = tok
	}
	if !testing.Short() {
		for _, dir := range familyDirs(t, "golden_tokenizersjs.json", "gemma2", "gemma3", "mistral", "phi3", "phi4-mini", "qwen3") {
			out["family/"+filepath.Base(dir)] = loadFamilyTokenizer(t, dir)
		}
		for _, name := range []string{"cl100k_base", "o200k_base"} {
			tok, err := tokenizer.Tiktoken(name)
			if err != nil {
				t.Fatal(err)
			}
			if !tokenizer.CanCut(tok) {
				t.Errorf("tiktoken %s: EncodePrefix does not cut (its split patterns have scanners that split at the cut)", name)
			}
			out["tiktoken/"+name] = tok
		}
	}
	return out
}

// prefixTexts are long texts of several kinds, each 16-40 KB, so that
// prefixes are cut well inside them (the first cut tried for n tokens is
// near 4n+64 bytes).
func prefixTexts(t *testing.T, tok *tokenizer.Tokenizer) map[string]string {
	t.Helper()
	quiz, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(n int, alphabet []string) string {
		var sb strings.Builder
		for range n {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	var specials []string
	for _, a := range tok.AddedTokens() {
		specials = append(specials, a.Content)
		if len(specials) == 8 {
			break
		}
	}
	var withSpecials strings.Builder
	for i := range 1200 {
		fmt.Fprintf(&withSpecials, "word%d%s %s x\n", i, specials[i%len(specials)], specials[(i+3)%len(specials)])
	}
	letters := strings.Split("abcdefghijklmnopqrstuvwxyz ,.!?0123456789", "")
	return map[string]string{
		"prose":           string(quiz),
		"random":          pick(24000, letters),
		"no spaces":       pick(16000, strings.Split("abcdefghijklmnopqrstuvwxyz", "")),
		"no spaces punct": pick(16000, strings.Split("abcdefghij,.;:!?-'\"()", "")),
		"cjk":             pick(8000, []string{"中", "文", "字", "符", "日本語", "。", "，", "한국어", " ", "a", "b ", "x "}),
		"emoji":           pick(8000, []string{"👍🏽", "👨‍👩‍👧", "🎉", " ", "a", "word ", "é", "e\u0301", "ﬁ", "Å"}),
		"specials":        withSpecials.String(),
		"whitespace":      pick(12000, []string{" ", "  ", "\n", "\t", "\n\n", "a", "b", " c", "\r\n", "\u00a0", "\u3000"}),
		"long words":      pick(1200, []string{"supercalifragilisticexpialidocious ", "antidisestablishmentarianism ", "pneumonoultramicroscopic ", "Internationalization "}),
		"contractions":    pick(8000, []string{"it's ", "we're ", "I'LL ", "they've ", "'s", "'d ", "don't ", "x'", "ll "}),
		"digits":          pick(8000, []string{"123", "4567 ", "a1 ", "b 2", "3.14 ", "x"}),
		// Case changes, and letters of both of o200k's classes (中, ʰ, a
		// mark) before an upper-case letter: "中文A b" splits "中文" "A" " b".
		"mixed case": pick(8000, []string{"HelloWorld ", "ABC", "def ", "A", "B ", "中文", "ǅ", "ʰ", "e\u0301", "DON'T ", "x'S ", " ", "iPhone ", "/\n"}),
	}
}

// TestEncodePrefixExact: for every tokenizer, kind of text and bound n,
// EncodePrefix gives exactly the first tokens of Encode (ids, tokens,
// character offsets), more than n of them when Encode has more, and
// EncodeOffsetsPrefix the first of EncodeOffsets.
// prefixCuts is about how many cut points TestEncodePrefixExact checks in
// each text: each is a whole encode of the text up to it, so the test's
// time grows with it (37 took 35 s of CI; 9 still put cuts in every
// kind of text, which a cut placed mid-word fails on).
const prefixCuts = 9

func TestEncodePrefixExact(t *testing.T) {
	for name, tok := range prefixTokenizers(t) {
		t.Run(name, func(t *testing.T) {
			cut := false
			for kind, text := range prefixTexts(t, tok) {
				for _, special := range []bool{false, true} {
					full, err := tok.Encode(text, special)
					if err != nil {
						t.Fatal(err)
					}
					fullIDs, fullOffs, err := tok.EncodeOffsets(text, special)
					if err != nil {
						t.Fatal(err)
					}
					if !special && tokenizer.CanCut(tok) {
						// Every token of a prefix cut where EncodePrefix
						// cuts is the whole text's, the last ones included
						// (EncodePrefix usually stops long before them).
						for from := 1; from < len(text); from += len(text)/prefixCuts + 1 {
							ids, c := tokenizer.CutPrefix(tok, text, from)
							if c < 0 {
								break
							}
							if len(ids) > len(full.IDs) || !reflect.DeepEqual(ids, full.IDs[:len(ids)]) {
								i := 0
								for i < len(ids) && i < len(full.IDs) && ids[i] == full.IDs[i] {
									i++
								}
								t.Fatalf("%s: cut at byte %d (%q|%q): token %d of %d differs from Encode's", kind, c, text[max(0, c-10):c], text[c:min(len(text), c+10)], i, len(ids))
							}
							from = max(from, c)
						}
					}
					// Around a row of 256 (one token under, at, over), none, one,
					// and past where the first cut is tried (about 4n+64 bytes).
					ns := []int{0, 1, 255, 256, 4099}
					if !tokenizer.CanCut(tok) {
						ns = []int{0, 4099} // the whole text every time
					}
					for _, n := range ns {
						got, err := tok.EncodePrefix(text, special, n)
						if err != nil {
							t.Fatal(err)
						}
						k := len(got.IDs)
						if k > len(full.IDs) || (k <= n && k != len(full.IDs)) {
							t.Fatalf("%s, special %v, n %d: %d tokens of %d", kind, special, n, k, len(full.IDs))
						}
						for i := range k {
							if got.IDs[i] != full.IDs[i] || got.Tokens[i] != full.Tokens[i] || got.Offsets[i] != full.Offsets[i] {
								t.Fatalf("%s, special %v, n %d: token %d of %d is %d %q %v, Encode has %d %q %v", kind, special, n, i, k,
									got.IDs[i], got.Tokens[i], got.Offsets[i], full.IDs[i], full.Tokens[i], full.Offsets[i])
							}
						}
						ids, offs, err := tok.EncodeOffsetsPrefix(text, special, n)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(ids, fullIDs[:len(ids)]) || !reflect.DeepEqual(offs, fullOffs[:len(offs)]) || len(ids) != k {
							t.Fatalf("%s, special %v, n %d: EncodeOffsetsPrefix differs from EncodeOffsets", kind, special, n)
						}
						cut = cut || k < len(full.IDs)/2
					}
				}
			}
			if tokenizer.CanCut(tok) != cut {
				t.Errorf("CanCut %v, but prefixes were cut: %v", tokenizer.CanCut(tok), cut)
			}
			t.Logf("%s cuts: %v", name, cut)
		})
	}
}

// TestEncodePrefixAddedTokenAcrossCut: an added token holding "letter
// space" must not be cut in two (nor one that ends where a cut would be).
func TestEncodePrefixAddedTokenAcrossCut(t *testing.T) {
	dir := testutil.Inflate(t, "testdata/tiny-base")
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), `"added_tokens": [`, `"added_tokens": [{"id": 100000, "content": "foo bar", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": true},{"id": 100001, "content": "zq", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": true},`, 1)
	tok, err := tokenizer.FromJSON([]byte(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tokenizer.CanCut(tok) {
		t.Fatal("tiny-base with added tokens cannot cut")
	}
	text := strings.Repeat("xfoo bar y foo barbar azq  b foo  bar ", 2000)
	full, err := tok.Encode(text, false)
	if err != nil {
		t.Fatal(err)
	}
	for from := 1; from < 2000; {
		ids, c := tokenizer.CutPrefix(tok, text, from)
		if !reflect.DeepEqual(ids, full.IDs[:len(ids)]) {
			t.Fatalf("cut at %d (%q|%q): %v, Encode starts %v", c, text[max(0, c-10):c], text[c:c+10], ids, full.IDs[:len(ids)])
		}
		from = c + 1
	}
	for n := range 200 {
		got, err := tok.EncodePrefix(text, false, n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.IDs, full.IDs[:len(got.IDs)]) || len(got.IDs) <= n {
			t.Fatalf("n %d: %v, Encode starts %v", n, got.IDs, full.IDs[:len(got.IDs)])
		}
	}
}

// TestEncodePrefixBounded: a 16 MB text kept to 256 tokens allocates in
// proportion to what is kept, not to the text (before, about 2 GB).
func TestEncodePrefixBounded(t *testing.T) {
	tok, err := tokenizer.Load(testutil.Inflate(t, "testdata/qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcdefghijklmnopqrstuvwxyz ,.!?0123456789"
	b := make([]byte, 16<<20)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	text := string(b)
	const n = 256
	if _, _, err := tok.EncodeOffsetsPrefix(text, false, n); err != nil { // warm the word cache
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ids, offs, err := tok.EncodeOffsetsPrefix(text, false, n)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	kept := offs[n-1][1] // bytes of text behind the n tokens kept
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d tokens (%d kept, %d bytes): %d bytes allocated", len(ids), n, kept, alloc)
	if alloc > uint64(128*kept) {
		t.Fatalf("allocated %d bytes to keep %d tokens (%d bytes of a %d-byte text): want under %d", alloc, n, kept, len(text), 128*kept)
	}
}
