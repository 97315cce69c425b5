package tokenizer

import (
	"encoding/json"
	"fmt"
	"sort"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token that is matched in the text before the model sees it
// (chat markers, BOS/EOS, reserved tokens), with tokenizers' matching flags.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"` // only when not inside a word
	LStrip     bool   `json:"lstrip"`      // swallows whitespace on its left
	RStrip     bool   `json:"rstrip"`      // swallows whitespace on its right
	Normalized bool   `json:"normalized"`  // matched in normalized text rather than raw text
	Special    bool   `json:"special"`     // skipped by Decode(ids, skipSpecial=true)
}

// addedMatcher finds added tokens leftmost-longest, like tokenizers'
// Aho-Corasick matcher. Tokens are grouped by first byte; added vocabularies
// are small (Llama-3 has 256) so scanning candidates per position is cheap.
type addedMatcher struct {
	byFirst [256][]addedPattern // longest first
	maxLen  int                 // bytes of the longest pattern
}

// addedPattern is what is searched for a token: its content, or for
// normalized tokens the content passed through the normalizer.
type addedPattern struct {
	pat string
	tok *AddedToken
}

func newAddedMatcher(pats []addedPattern) *addedMatcher {
	if len(pats) == 0 {
		return nil
	}
	a := &addedMatcher{}
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

// reaches reports whether a pattern occurs at [i, j) in s with i < c <= j:
// one that crosses byte c or ends there (where rstrip and single_word
// look past it), so that find on s[:c] could differ from find on s.
func (a *addedMatcher) reaches(s string, c int) bool {
	if a == nil {
		return false
	}
	for i := max(0, c-a.maxLen); i < c; i++ {
		for _, p := range a.byFirst[s[i]] {
			if j := i + len(p.pat); j >= c && j <= len(s) && s[i:j] == p.pat {
				return true
			}
		}
	}
	return false
}

// addedMatch is a token found at [start, end) (after lstrip/rstrip widening).
type addedMatch struct {
	tok        *AddedToken
	start, end int
}

func (a *addedMatcher) find(s string) []addedMatch {
	if a == nil {
		return nil
	}
	var out []addedMatch
	prevEnd := 0
	for i := 0; i < len(s); i++ {
		cands := a.byFirst[s[i]]
		if len(cands) == 0 {
			continue
		}
		for _, p := range cands {
			t := p.tok
			if len(s)-i < len(p.pat) || s[i:i+len(p.pat)] != p.pat {
				continue
			}
			start, end := i, i+len(p.pat)
			if t.SingleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[end:])) {
				// tokenizers drops the match and searches on after it,
				// without retrying shorter tokens here.
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

// isWordChar is Rust regex's Unicode \w, which tokenizers uses for
// single_word: alphabetic, marks, decimal digits, connector punctuation.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.In(r, unicode.Nd, unicode.Nl, unicode.Pc) ||
		r == 0x200C || r == 0x200D // Join_Control
}

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}

// readAddedTokens parses tokenizer.json's "added_tokens".
func readAddedTokens(root jobj) ([]*AddedToken, error) {
	list, err := root.list("added_tokens")
	if err != nil {
		return nil, err
	}
	out := make([]*AddedToken, 0, len(list))
	for i, raw := range list {
		path := fmt.Sprintf("%s[%d]", root.field("added_tokens"), i)
		t := &AddedToken{ID: -1}
		if err := json.Unmarshal(raw, t); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if t.Content == "" {
			return nil, fmt.Errorf("%s: empty content", path)
		}
		if t.ID < 0 || t.ID > 1<<28 {
			return nil, fmt.Errorf("%s: id %d out of range", path, t.ID)
		}
		if !utf8.ValidString(t.Content) {
			return nil, fmt.Errorf("%s: content is not valid UTF-8", path)
		}
		out = append(out, t)
	}
	return out, nil
}
