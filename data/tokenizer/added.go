package tokenizer

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
// Aho-Corasick matcher. The patterns are in a radix trie (edges labelled
// with strings, compared at once), so that finding the longest pattern at
// a position walks at most one pattern's bytes whatever the number of added
// tokens: vocabularies with thousands of reserved tokens sharing their
// first bytes cost no more than Llama-3's 256.
type addedMatcher struct {
	pats   []addedPattern
	nodes  []addedNode // nodes[0] is the root
	root   [256]int32  // the root's child by first byte; 0 for none
	maxLen int         // bytes of the longest pattern
	only   int         // the first byte of every pattern if they share it (often '<'), else -1
}

// addedNode is a node of the trie: its string is the labels from the root.
type addedNode struct {
	label string  // the edge from the parent, first byte included
	pat   int32   // the pattern (index in pats) that is the node's string, or -1
	first string  // the first byte of each child's label, in the order of kids
	kids  []int32 // children (indexes in nodes)
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
	a := &addedMatcher{pats: pats}
	// One pattern per string: the first listed wins, as it did when
	// candidates were tried in a stable order.
	seen := make(map[string]bool, len(pats))
	order := make([]int32, 0, len(pats))
	for k, p := range pats {
		if p.pat == "" || seen[p.pat] {
			continue
		}
		seen[p.pat] = true
		order = append(order, int32(k))
		a.maxLen = max(a.maxLen, len(p.pat))
	}
	str := func(k int) string { return pats[order[k]].pat }
	sort.Slice(order, func(x, y int) bool { return pats[order[x]].pat < pats[order[y]].pat })
	// Each job is a node whose string, of length depth, prefixes the
	// sorted patterns order[lo:hi] (and no others).
	type job struct {
		node          int32
		lo, hi, depth int
	}
	a.nodes = append(a.nodes, addedNode{pat: -1})
	jobs := []job{{0, 0, len(order), 0}}
	for len(jobs) > 0 {
		j := jobs[len(jobs)-1]
		jobs = jobs[:len(jobs)-1]
		lo := j.lo
		if lo < j.hi && len(str(lo)) == j.depth { // sorts first of those it prefixes
			a.nodes[j.node].pat = order[lo]
			lo++
		}
		for lo < j.hi {
			b := str(lo)[j.depth]
			hi := lo + 1
			for hi < j.hi && str(hi)[j.depth] == b {
				hi++
			}
			// The patterns sharing byte b share the prefix common to the
			// first and the last of them.
			x, y := str(lo), str(hi-1)
			l := j.depth + 1
			for l < len(x) && l < len(y) && x[l] == y[l] {
				l++
			}
			kid := int32(len(a.nodes))
			a.nodes = append(a.nodes, addedNode{label: x[j.depth:l], pat: -1})
			n := &a.nodes[j.node]
			n.first += x[j.depth : j.depth+1]
			n.kids = append(n.kids, kid)
			jobs = append(jobs, job{kid, lo, hi, l})
			lo = hi
		}
	}
	root := &a.nodes[0]
	for i, kid := range root.kids {
		a.root[root.first[i]] = kid
	}
	a.only = -1
	if len(root.first) == 1 {
		a.only = int(root.first[0])
	}
	return a
}

// longest returns the longest pattern that s[i:] starts with, and its
// length; -1 and 0 if none does.
func (a *addedMatcher) longest(s string, i int) (pat int32, n int) {
	pat = -1
	d := i
	for k := a.root[s[i]]; k != 0; {
		nd := &a.nodes[k]
		if !strings.HasPrefix(s[d:], nd.label) {
			break
		}
		d += len(nd.label)
		if nd.pat >= 0 {
			pat, n = nd.pat, d-i
		}
		if d == len(s) {
			break
		}
		x := strings.IndexByte(nd.first, s[d])
		if x < 0 {
			break
		}
		k = nd.kids[x]
	}
	return pat, n
}

// reaches reports whether a pattern occurs at [i, j) in s with i < c <= j:
// one that crosses byte c or ends there (where rstrip and single_word
// look past it), so that find on s[:c] could differ from find on s.
func (a *addedMatcher) reaches(s string, c int) bool {
	if a == nil {
		return false
	}
	for i := max(0, c-a.maxLen); i < c; i++ {
		// The longest pattern at i reaches c if any pattern at i does.
		if a.root[s[i]] != 0 {
			if _, n := a.longest(s, i); n > 0 && i+n >= c {
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
		if a.only >= 0 {
			j := strings.IndexByte(s[i:], byte(a.only))
			if j < 0 {
				break
			}
			i += j
		} else if a.root[s[i]] == 0 {
			continue
		}
		k, n := a.longest(s, i)
		if k < 0 {
			continue
		}
		t := a.pats[k].tok
		start, end := i, i+n
		if t.SingleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[end:])) {
			// tokenizers drops the match and searches on after it,
			// without retrying shorter tokens here.
			i = end - 1
			continue
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
