package tokenizer

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// matcher finds the non-overlapping matches of a tokenizers Pattern in a
// string, as byte ranges in order.
type matcher interface {
	find(s string) ([][2]int, error)
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
	return m, nil
}

// regexTimeout bounds one regexp2 search; real patterns take microseconds.
const regexTimeout = 10 * time.Second

type literal string

func (l literal) find(s string) ([][2]int, error) {
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
	src string
	re  *regexp2.Regexp
	// fast, when set, is a hand-written scanner equivalent to re (see
	// fastsplit.go); re stays the reference the tests compare it with.
	fast func(s string, out [][2]int) [][2]int
}

func compileRegex(src string) (*regex, error) {
	re, err := regexp2.Compile(src, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", src, err)
	}
	// A pattern with catastrophic backtracking ends in an error, not a hang.
	re.MatchTimeout = regexTimeout
	return &regex{src: src, re: re, fast: fastScanner(src)}, nil
}

func (r *regex) find(s string) ([][2]int, error) {
	if r.fast != nil {
		return r.fast(s, nil), nil
	}
	return r.findSlow(s)
}

// findSlow runs regexp2, which works on runes; its indexes are converted
// back to byte offsets.
func (r *regex) findSlow(s string) ([][2]int, error) {
	if s == "" {
		return nil, nil
	}
	runes := []rune(s)
	byteAt := make([]int, len(runes)+1)
	b := 0
	for i, c := range runes {
		byteAt[i] = b
		b += utf8.RuneLen(c)
	}
	byteAt[len(runes)] = b
	var out [][2]int
	m, err := r.re.FindRunesMatch(runes)
	for ; m != nil && err == nil; m, err = r.re.FindNextMatch(m) {
		out = append(out, [2]int{byteAt[m.Index], byteAt[m.Index+m.Length]})
	}
	if err != nil {
		return nil, fmt.Errorf("regex %q: %v", r.src, err)
	}
	return out, nil
}

// charMatcher matches single characters by a predicate, each on its own.
type charMatcher func(r rune) bool

func (c charMatcher) find(s string) ([][2]int, error) {
	var out [][2]int
	for i, r := range s {
		if c(r) {
			out = append(out, [2]int{i, i + utf8.RuneLen(r)})
		}
	}
	return out, nil
}
