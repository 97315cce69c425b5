package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// within runs f and fails t when it has not returned after d, so that a
// test of a bound takes bounded time even where the bound is missing (f is
// then left running until the test binary exits).
func within(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
		return nil
	}
}

// wantLimit checks that err is an ErrLimit naming tokenizer.json and the
// component.
func wantLimit(t *testing.T, err error, component string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("no error")
	case !errors.Is(err, ErrLimit):
		t.Fatalf("error %q does not wrap ErrLimit", err)
	case !strings.Contains(err.Error(), "tokenizer.json: ") || !strings.Contains(err.Error(), component+": "):
		t.Fatalf("error %q does not name tokenizer.json and %s", err, component)
	}
}

func replaceObj(pattern map[string]any, content string) map[string]any {
	return map[string]any{"type": "Replace", "pattern": pattern, "content": content}
}

func seqOf(key string, n int, obj map[string]any) map[string]any {
	l := make([]any, n)
	for i := range l {
		l[i] = obj
	}
	return map[string]any{"type": "Sequence", key: l}
}

// TestNormalizerGrowthBounded: normalizers that would grow the text past
// growthLimit fail with an error naming the stage, before they build the
// text (the cases are small enough to run quickly without the bound).
func TestNormalizerGrowthBounded(t *testing.T) {
	double := replaceObj(map[string]any{"String": "a"}, "aa")
	cases := []struct {
		name       string
		normalizer map[string]any
		text       string
		component  string
	}{
		// 4 bytes may become 4*16+64 = 128: the 5th doubling makes 128,
		// the 6th 256.
		{"doubling Sequence", seqOf("normalizers", 12, double), "aaaa", "normalizer.normalizers[5] (Replace)"},
		{"nested Sequence", map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "NFC"}, seqOf("normalizers", 12, double)}}, "aaaa", "normalizer.normalizers[1].normalizers[5] (Replace)"},
		// Every empty match replaced: 25 of them on 24 bytes.
		{"empty regex", replaceObj(map[string]any{"Regex": ""}, strings.Repeat("x", 4096)),
			"the cat sat on the mat. ", "normalizer (Replace)"},
		{"long Prepend", map[string]any{"type": "Prepend", "prepend": strings.Repeat("▁", 400)}, "hi", "normalizer (Prepend)"},
		// Stages that grow the text by a constant each, which no check
		// inside them catches: 2 bytes a stage around each CJK character.
		{"BertNormalizer Sequence", seqOf("normalizers", 64, map[string]any{"type": "BertNormalizer",
			"clean_text": false, "handle_chinese_chars": true, "strip_accents": false, "lowercase": false}),
			"中", "normalizer.normalizers[54] (BertNormalizer)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := spJSON(t)
			m["normalizer"] = c.normalizer
			tok, err := fromMap(t, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = within(t, 10*time.Second, func() error {
				_, err := tok.Encode(c.text, false)
				return err
			})
			wantLimit(t, err, c.component)
		})
	}
}

// TestRealNormalizersWithinBound: the largest growth of real normalizers
// is far inside growthLimit. NFKC makes U+FDFA 18 characters (11 times
// its bytes), then SentencePiece's Prepend and Replace of " " by "▁"
// (3 times a space); BertNormalizer pads CJK characters; NFKD splits
// Hangul syllables into three jamo.
func TestRealNormalizersWithinBound(t *testing.T) {
	sp := func(first map[string]any) map[string]any {
		return map[string]any{"type": "Sequence", "normalizers": []any{first,
			map[string]any{"type": "Prepend", "prepend": "▁"},
			replaceObj(map[string]any{"String": " "}, "▁")}}
	}
	bert := map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "lowercase": true}
	cases := []struct {
		normalizer map[string]any
		text       string
	}{
		{sp(map[string]any{"type": "NFKC"}), "\uFDFA"},
		{sp(map[string]any{"type": "NFKC"}), strings.Repeat("\uFDFA", 1000)},
		{sp(map[string]any{"type": "NFKD"}), strings.Repeat("\uFDFA \uFDFB 한 ㌀ ", 100)},
		{sp(map[string]any{"type": "NFKC"}), " "},
		{sp(map[string]any{"type": "NFKC"}), strings.Repeat(" ", 1000)},
		{bert, strings.Repeat("中İ", 1000)},
	}
	for _, c := range cases {
		m := spJSON(t)
		m["normalizer"] = c.normalizer
		tok, err := fromMap(t, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.Encode(c.text, false); err != nil {
			t.Errorf("%.20q: %v", c.text, err)
		}
	}
}

// TestDecoderGrowthBounded: decoders that would grow the text past
// growthLimit fail with an error naming the stage.
func TestDecoderGrowthBounded(t *testing.T) {
	tail := []any{map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}
	cases := []struct {
		name      string
		decoder   map[string]any
		component string
	}{
		{"doubling Sequence", seqOf("decoders", 12, replaceObj(map[string]any{"String": "e"}, "ee")), "decoder.decoders[6] (Replace)"},
		{"empty regex", replaceObj(map[string]any{"Regex": ""}, strings.Repeat("x", 4096)), "decoder (Replace)"},
		// BPEDecoder with an empty suffix puts a space between all
		// characters: 2n+1 bytes of n, at every stage.
		{"BPEDecoder Sequence", map[string]any{"type": "Sequence", "decoders": append(
			[]any{map[string]any{"type": "BPEDecoder", "suffix": ""}, map[string]any{"type": "BPEDecoder", "suffix": ""},
				map[string]any{"type": "BPEDecoder", "suffix": ""}, map[string]any{"type": "BPEDecoder", "suffix": ""},
				map[string]any{"type": "BPEDecoder", "suffix": ""}, map[string]any{"type": "BPEDecoder", "suffix": ""}}, tail...)},
			"decoder.decoders[4] (BPEDecoder)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := spJSON(t)
			tok, err := fromMap(t, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := tok.Encode("the tree here", false)
			if err != nil {
				t.Fatal(err)
			}
			m["decoder"] = c.decoder
			if tok, err = fromMap(t, m, nil); err != nil {
				t.Fatal(err)
			}
			err = within(t, 10*time.Second, func() error {
				_, err := tok.Decode(enc.IDs, false)
				return err
			})
			wantLimit(t, err, c.component)
		})
	}
}

// catastrophic is a Split pattern whose nested quantifiers backtrack
// exponentially in the length of a run of letters and spaces that no
// digit follows: on comma-separated prose each search is short, which a
// timeout on each search does not stop (a 549-byte line took 26 s).
const catastrophic = `([a-z ]+)+[0-9]|.`

// TestRegexBudget: the searches of slow regexes in one Encode share one
// time budget, and running out of it is an error naming the pattern.
func TestRegexBudget(t *testing.T) {
	// Each search costs about 50 ms (a run of 18 letters and spaces), the
	// text about 15 s in all, 15 times the budget.
	text := strings.Repeat("the cat sat on the, ", 300)
	split := map[string]any{"type": "Split", "pattern": map[string]any{"Regex": catastrophic}, "behavior": "Isolated"}
	cases := []struct {
		name      string
		pre       map[string]any
		component string
	}{
		{"Split", split, "pre_tokenizer.pattern"},
		// Pieces cut at each comma first: a budget per search (or per
		// piece) would give each of the 600 pieces a second.
		{"after a split at commas", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"String": ","}, "behavior": "Isolated"}, split}},
			"pre_tokenizer.pretokenizers[1].pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := spJSON(t)
			delete(m, "normalizer") // which would make the spaces "▁"
			m["pre_tokenizer"] = c.pre
			tok, err := fromMap(t, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = within(t, 15*time.Second, func() error {
				_, err := tok.Encode(text, false)
				return err
			})
			wantLimit(t, err, c.component)
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", catastrophic)) {
				t.Errorf("error %q does not quote the pattern", err)
			}
			t.Logf("%v: %v", time.Since(start), err)
		})
	}
}

// TestRealRegexesWithinBudget runs the patterns of real tokenizers on
// regexp2 over long runs of what makes backtracking engines slow (spaces,
// newlines, digits, emoji, one letter) and prose: each stays far inside
// its budget.
func TestRealRegexesWithinBudget(t *testing.T) {
	deepseek := "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
	size := 256 << 10
	switch {
	case raceEnabled:
		size = 16 << 10
	case testing.Short():
		size = 32 << 10
	}
	prose := strings.Repeat("Quiz 3: What's 12+30? It isn't 43.\n\tAnswer:  42 (forty-two) ", size/60)
	texts := map[string]string{
		"prose": prose, "spaces": strings.Repeat(" ", size), "spaces then x": strings.Repeat(" ", size) + "x",
		"newlines": strings.Repeat(" \n", size/2), "digits": strings.Repeat("7", size),
		"emoji": strings.Repeat("👩‍👩‍👧‍👦", size/25), "a": strings.Repeat("a", size), "A": strings.Repeat("A", size),
		"中": strings.Repeat("中", size/3), "accents": strings.Repeat("e\u0301", size/3),
	}
	worst, worstName := 0.0, ""
	for _, p := range []struct{ name, src string }{
		{"o200k", o200kSplit}, {"deepseek", deepseek}, {"Whitespace", `\w+|[^\w\s]+`},
		{"gpt2", gpt2Split}, {"cl100k", cl100kSplit}, {"qwen", qwenSplit},
	} {
		re, err := compileRegex(p.src)
		if err != nil {
			t.Fatal(err)
		}
		re.fast = nil
		for name, s := range texts {
			b := newBudget(len(s))
			if _, err := re.find(s, b); err != nil {
				t.Errorf("%s on %s: %v", p.name, name, err)
				continue
			}
			if f := float64(b.regex-b.regexLeft) / float64(b.regex); f > worst {
				worst, worstName = f, p.name+" on "+name
			}
		}
	}
	t.Logf("at most %.1f%% of a budget used (%s)", 100*worst, worstName)
}

// TestConcurrentSlowRegex: concurrent searches of one pattern on regexp2
// (each owns a compiled copy whose MatchTimeout it sets) find what a
// search alone finds.
func TestConcurrentSlowRegex(t *testing.T) {
	re, err := compileRegex(o200kSplit)
	if err != nil {
		t.Fatal(err)
	}
	texts := append(goldenTexts(t), extraTexts...)
	want := make([][][2]int, len(texts))
	for i, s := range texts {
		if want[i], err = re.find(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for k := range 20 * len(texts) {
				i := (k + g*7) % len(texts)
				got, err := re.find(texts[i], nil)
				if err == nil && fmt.Sprint(got) != fmt.Sprint(want[i]) {
					err = fmt.Errorf("%q: %v, alone %v", texts[i], got, want[i])
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
