package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// refAddedMatcher is the matcher added.go had before the trie: every
// pattern with the text's byte as first byte, longest first, compared at
// every position. Its cost grows with the number of added tokens, but its
// semantics are the reference the trie must keep.
type refAddedMatcher struct {
	byFirst [256][]addedPattern
	maxLen  int
}

func newRefAddedMatcher(pats []addedPattern) *refAddedMatcher {
	a := &refAddedMatcher{}
	for _, p := range pats {
		a.byFirst[p.pat[0]] = append(a.byFirst[p.pat[0]], p)
		a.maxLen = max(a.maxLen, len(p.pat))
	}
	for i := range a.byFirst {
		l := a.byFirst[i]
		sort.SliceStable(l, func(x, y int) bool { return len(l[x].pat) > len(l[y].pat) })
	}
	return a
}

func (a *refAddedMatcher) reaches(s string, c int) bool {
	for i := max(0, c-a.maxLen); i < c; i++ {
		for _, p := range a.byFirst[s[i]] {
			if j := i + len(p.pat); j >= c && j <= len(s) && s[i:j] == p.pat {
				return true
			}
		}
	}
	return false
}

func (a *refAddedMatcher) find(s string) []addedMatch {
	var out []addedMatch
	prevEnd := 0
	for i := 0; i < len(s); i++ {
		for _, p := range a.byFirst[s[i]] {
			t := p.tok
			if len(s)-i < len(p.pat) || s[i:i+len(p.pat)] != p.pat {
				continue
			}
			start, end := i, i+len(p.pat)
			if t.SingleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[end:])) {
				i = end - 1
				break
			}
			if t.LStrip {
				for start > prevEnd {
					r, size := utf8.DecodeLastRuneInString(s[prevEnd:start])
					if !unicode.IsSpace(r) {
						break
					}
					start -= size
				}
			}
			if t.RStrip {
				for end < len(s) {
					r, size := utf8.DecodeRuneInString(s[end:])
					if !unicode.IsSpace(r) {
						break
					}
					end += size
				}
			}
			out = append(out, addedMatch{t, start, end})
			prevEnd = end
			i = end - 1
			break
		}
	}
	return out
}

// TestAddedMatcherSameAsReference compares the trie with the reference
// matcher on random vocabularies over a small alphabet (so that patterns
// share prefixes, nest, repeat and overlap) with random flags: same
// matches, same tokens, same widened spans, same reaches.
func TestAddedMatcherSameAsReference(t *testing.T) {
	alphabet := []string{"a", "b", " ", "<", "|", "é", "\u3000", "_", "1"}
	rnd := rand.New(rand.NewSource(1))
	word := func(maxRunes int) string {
		var sb strings.Builder
		for n := rnd.Intn(maxRunes + 1); n > 0; n-- {
			sb.WriteString(alphabet[rnd.Intn(len(alphabet))])
		}
		return sb.String()
	}
	for iter := 0; iter < 3000; iter++ {
		var pats []addedPattern
		oneFirst := iter%3 == 0 // all patterns start with '<', as is common
		for n := 1 + rnd.Intn(12); n > 0; n-- {
			p := word(6)
			if oneFirst {
				p = "<" + p
			} else if p == "" {
				p = "a"
			}
			if len(pats) > 0 && rnd.Intn(6) == 0 { // the same content twice: the first wins
				p = pats[rnd.Intn(len(pats))].pat
			}
			pats = append(pats, addedPattern{p, &AddedToken{
				ID: len(pats), Content: p,
				SingleWord: rnd.Intn(3) == 0, LStrip: rnd.Intn(3) == 0, RStrip: rnd.Intn(3) == 0,
			}})
		}
		ref, trie := newRefAddedMatcher(pats), newAddedMatcher(pats)
		for k := 0; k < 20; k++ {
			s := word(40)
			if k%2 == 0 { // plant patterns so that there is much to find
				var sb strings.Builder
				for n := rnd.Intn(6); n > 0; n-- {
					sb.WriteString(word(3))
					sb.WriteString(pats[rnd.Intn(len(pats))].pat)
				}
				s = sb.String() + word(3)
			}
			if got, want := trie.find(s), ref.find(s); !reflect.DeepEqual(got, want) {
				t.Fatalf("patterns %q, text %q:\n got %s\nwant %s", patStrings(pats), s, fmtMatches(got), fmtMatches(want))
			}
			for c := 1; c < len(s); c++ {
				if got, want := trie.reaches(s, c), ref.reaches(s, c); got != want {
					t.Fatalf("patterns %q, text %q: reaches(%d) = %v, want %v", patStrings(pats), s, c, got, want)
				}
			}
		}
	}
}

func patStrings(pats []addedPattern) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = fmt.Sprintf("%s(%d sw=%v l=%v r=%v)", p.pat, p.tok.ID, p.tok.SingleWord, p.tok.LStrip, p.tok.RStrip)
	}
	return out
}

func fmtMatches(ms []addedMatch) string {
	var sb strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&sb, "[%d %d)=%d ", m.start, m.end, m.tok.ID)
	}
	return sb.String()
}

// manyAddedTokenizer is tiny-base with n more added tokens
// <|reserved_special_token_K|>, all sharing their first bytes, as
// Llama-3-style vocabularies have them by the thousand.
func manyAddedTokenizer(t testing.TB, n int) (*Tokenizer, int) {
	raw, err := os.ReadFile("testdata/tiny-base/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	added, _ := m["added_tokens"].([]any)
	base := 1 << 16
	for i := range n {
		added = append(added, map[string]any{"id": base + i, "content": fmt.Sprintf("<|reserved_special_token_%d|>", i), "special": true})
	}
	m["added_tokens"] = added
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromJSON(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tk, base
}

// TestManyAddedTokensBoundedTime: finding added tokens costs the same with
// 20,000 of them sharing a first byte as with 16. Matching used to compare
// every added token with that first byte at every such byte of the text,
// hours of work for a stranger's tokenizer.json and a text full of '<'.
func TestManyAddedTokensBoundedTime(t *testing.T) {
	text := strings.Repeat("<|reserved_special_token_", 8000) // 200 KB of near misses
	findTime := func(tk *Tokenizer) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if ms := tk.rawAdded.find(text); len(ms) != 0 {
				t.Fatalf("found %d added tokens in near misses", len(ms))
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	few, _ := manyAddedTokenizer(t, 16)
	many, base := manyAddedTokenizer(t, 20000)
	tFew, tMany := findTime(few), findTime(many)
	t.Logf("find in %d KB: %v with 16 added tokens, %v with 20,000", len(text)>>10, tFew, tMany)
	// The scheduler can stall either one on a loaded machine: the bound is
	// 20 times the time with 16 tokens, plus 100ms. Before the trie, this
	// took more than a second with 20,000 tokens.
	if tMany > 20*tFew+100*time.Millisecond {
		t.Errorf("find with 20,000 added tokens took %v, with 16 %v: matching cost grows with the added vocabulary", tMany, tFew)
	}

	// Same ids as the reference matcher, and the ids of the tokens found.
	enc, err := many.Encode("x<|reserved_special_token_19999|><|reserved_special_token_<|reserved_special_token_7|>"+text[:1000], false)
	if err != nil {
		t.Fatal(err)
	}
	var special []int
	for _, id := range enc.IDs {
		if id >= base {
			special = append(special, id-base)
		}
	}
	if want := []int{19999, 7}; !reflect.DeepEqual(special, want) {
		t.Errorf("added tokens found: %v, want %v", special, want)
	}
	var pats []addedPattern
	for _, a := range many.added {
		pats = append(pats, addedPattern{a.Content, a})
	}
	ref := newRefAddedMatcher(pats)
	rnd := rand.New(rand.NewSource(2))
	for range 200 {
		var sb strings.Builder
		for n := rnd.Intn(8); n > 0; n-- {
			switch rnd.Intn(4) {
			case 0:
				fmt.Fprintf(&sb, "<|reserved_special_token_%d|>", rnd.Intn(25000))
			case 1:
				fmt.Fprintf(&sb, "<|reserved_special_token_%d", rnd.Intn(25000))
			case 2:
				sb.WriteString(pats[rnd.Intn(len(pats))].pat)
			default:
				sb.WriteString(" <|x ")
			}
		}
		s := sb.String()
		if got, want := many.rawAdded.find(s), ref.find(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("text %q:\n got %s\nwant %s", s, fmtMatches(got), fmtMatches(want))
		}
	}
}

// BenchmarkAddedFind measures the search for added tokens alone on the
// quiz corpus, with tiny-base's few added tokens and with 20,000.
func BenchmarkAddedFind(b *testing.B) {
	corpus, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(corpus)
	for _, n := range []int{0, 20000} {
		tk, _ := manyAddedTokenizer(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tk.rawAdded.find(text)
			}
		})
	}
}
