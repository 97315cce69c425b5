package augment

import (
	"fmt"
	"strings"

	"github.com/ftune/ftune/data/prep"
)

// MultipleChoice is a question with options and the index of the right one.
type MultipleChoice struct {
	Question string
	Options  []string
	Answer   int
}

// Validate checks that the answer is an option and that options are
// distinct: with two equal options, which one is right after a shuffle
// would be ambiguous.
func (q MultipleChoice) Validate() error {
	if len(q.Options) < 2 || len(q.Options) > 26 {
		return fmt.Errorf("multiple choice %q: %d options, want 2..26 (lettered A..Z)", q.Question, len(q.Options))
	}
	if q.Answer < 0 || q.Answer >= len(q.Options) {
		return fmt.Errorf("multiple choice %q: answer %d, want 0..%d", q.Question, q.Answer, len(q.Options)-1)
	}
	seen := map[string]bool{}
	for _, o := range q.Options {
		if seen[o] {
			return fmt.Errorf("multiple choice %q: option %q appears twice", q.Question, o)
		}
		seen[o] = true
	}
	return nil
}

// ShuffleOptions permutes the options and remaps the answer, so a model
// cannot learn that the answer is usually "A".
func ShuffleOptions(q MultipleChoice, r *prep.Rand) (MultipleChoice, error) {
	if err := q.Validate(); err != nil {
		return q, err
	}
	perm := prep.Perm(len(q.Options), r)
	out := MultipleChoice{Question: q.Question, Options: make([]string, len(q.Options))}
	for newPos, old := range perm {
		out.Options[newPos] = q.Options[old]
		if old == q.Answer {
			out.Answer = newPos
		}
	}
	return out, nil
}

// Format writes the question with lettered options, and the answer letter.
func (q MultipleChoice) Format() (prompt, answer string) {
	var b strings.Builder
	b.WriteString(q.Question)
	for i, o := range q.Options {
		fmt.Fprintf(&b, "\n%c. %s", 'A'+i, o)
	}
	return b.String(), string(rune('A' + q.Answer))
}
