package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// matcher finds the non-overlapping matches of a tokenizers Pattern in a
// string, as byte ranges in order. b bounds the time of regexes (see
// budget.go); nil gives s a budget of its own.
type matcher interface {
	find(s string, b *budget) ([][2]int, error)
}

func buildMatcher(o jobj, key string) (matcher, error) {
	lit, re, isRegex, err := o.pattern(key)
	if err != nil {
		return nil, err
	}
	if !isRegex {
		if lit == "" {
			return nil, fmt.Errorf("%s: empty String pattern", o.field(key))
		}
		return literal(lit), nil
	}
	m, err := compileRegex(re)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.field(key), err)
	}
	m.where = o.field(key)
	return m, nil
}

type literal string

func (l literal) find(s string, _ *budget) ([][2]int, error) {
	var out [][2]int
	for i := 0; ; {
		k := strings.Index(s[i:], string(l))
		if k < 0 {
			return out, nil
		}
		out = append(out, [2]int{i + k, i + k + len(l)})
		i += k + len(l)
	}
}

// regex is a Split/Replace pattern. tokenizers compiles these with Oniguruma,
// whose syntax (look-around, \p{..} classes, inline flags) regexp2 accepts;
// Go's regexp does not (no look-ahead), which is why sugarme/tokenizer fails.
type regex struct {
	src   string
	where string // the field of tokenizer.json it came from, for errors
	// res holds compiled copies of src: a search sets its copy's
	// MatchTimeout to what is left of its call's budget, so concurrent
	// calls each need their own.
	res sync.Pool
	// fast, when set, is a hand-written scanner equivalent to src (see
	// fastsplit.go); regexp2 stays the reference the tests compare it with.
	fast func(s string, out [][2]int) [][2]int
}

func compileRegex(src string) (*regex, error) {
	re, err := regexp2.Compile(src, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", src, err)
	}
	r := &regex{src: src, where: "regex", fast: fastScanner(src)}
	r.res.Put(re)
	return r, nil
}

// compiled returns a copy of the pattern for one search to own.
func (r *regex) compiled() (*regexp2.Regexp, error) {
	if re, ok := r.res.Get().(*regexp2.Regexp); ok {
		return re, nil
	}
	return regexp2.Compile(r.src, regexp2.None)
}

func (r *regex) find(s string, b *budget) ([][2]int, error) {
	if r.fast != nil {
		return r.fast(s, nil), nil
	}
	if b == nil {
		b = newBudget(len(s))
	}
	return r.search(s, b)
}

// findSlow is find on regexp2 even where a scanner exists, with a budget
// of its own.
func (r *regex) findSlow(s string) ([][2]int, error) {
	return r.search(s, newBudget(len(s)))
}

// search runs regexp2, which works on runes; its indexes are converted
// back to byte offsets. Its time comes out of b's regex budget: each
// search for the next match may take what is left of it.
func (r *regex) search(s string, b *budget) ([][2]int, error) {
	if s == "" {
		return nil, nil
	}
	runes := []rune(s)
	byteAt := make([]int, len(runes)+1)
	n := 0
	for i, c := range runes {
		byteAt[i] = n
		n += utf8.RuneLen(c)
	}
	byteAt[len(runes)] = n
	re, err := r.compiled()
	if err != nil {
		return nil, fmt.Errorf("%s: invalid regex %.200q: %v", r.where, r.src, err)
	}
	defer r.res.Put(re)
	start := time.Now()
	defer func() { b.regexLeft -= time.Since(start) }()
	var out [][2]int
	var m *regexp2.Match
	for {
		left := b.regexLeft - time.Since(start)
		if left <= 0 {
			return nil, r.overBudget(b)
		}
		re.MatchTimeout = left
		if m == nil {
			m, err = re.FindRunesMatch(runes)
		} else {
			m, err = re.FindNextMatch(m)
		}
		if err != nil {
			if strings.HasPrefix(err.Error(), "match timeout") {
				return nil, r.overBudget(b)
			}
			// Not seen: regexp2 fails only on its timeout. Its messages
			// may quote the whole text.
			return nil, fmt.Errorf("%s: regex %.200q: %.200v", r.where, r.src, err)
		}
		if m == nil {
			return out, nil
		}
		out = append(out, [2]int{byteAt[m.Index], byteAt[m.Index+m.Length]})
	}
}

func (r *regex) overBudget(b *budget) error {
	return fmt.Errorf("%s: regex %.200q took more than the %v its searches may take on %d bytes of text (%v plus %v a byte; catastrophic backtracking?): %w",
		r.where, r.src, b.regex.Round(time.Millisecond), b.in, regexFloor, regexPerByte, ErrLimit)
}

// charMatcher matches single characters by a predicate, each on its own.
type charMatcher func(r rune) bool

func (c charMatcher) find(s string, _ *budget) ([][2]int, error) {
	var out [][2]int
	for i, r := range s {
		if c(r) {
			out = append(out, [2]int{i, i + utf8.RuneLen(r)})
		}
	}
	return out, nil
}
