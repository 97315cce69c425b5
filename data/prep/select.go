package prep

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ftune/ftune/data/format"
)

// Tokenization is what TokenizeAll made of examples, with what became of
// each: enough to take the documents and Stats of any subset of the
// examples without tokenising them again (Select), which a token cache
// keeps so that one cache of a whole file serves its training split and
// its held-out share.
type Tokenization struct {
	Docs []Tokenized // the kept examples' documents, in order
	// Outcomes has one entry per example, in order: Kept, Truncated,
	// Dropped, DroppedNoLabel or Skipped. The examples that are Kept or
	// Truncated are Docs, in the same order.
	Outcomes []Outcome
	// SkipErrors holds the error of each Skipped example, by its index.
	SkipErrors map[int]string
	// Keys are the examples' ExampleKey, one per example (nil: not
	// computed): what finds validation examples that are also training
	// examples, word for word, without the examples at hand.
	Keys  []uint64
	Stats Stats // of all the examples
}

// TokenizeAllOutcomes is TokenizeAll, with what became of each example.
func (p *Preprocessor) TokenizeAllOutcomes(exs []format.Example) (Tokenization, error) {
	t := Tokenization{Outcomes: make([]Outcome, len(exs))}
	docs, st, err := p.tokenizeAll(exs, &t)
	if err != nil {
		return Tokenization{}, err
	}
	t.Docs, t.Stats = docs, st
	return t, nil
}

// note records example i's outcome (and its error when skipped); rec nil
// records nothing.
func (rec *Tokenization) note(i int, o Outcome, err error) {
	if rec == nil {
		return
	}
	rec.Outcomes[i] = o
	if o == Skipped {
		if rec.SkipErrors == nil {
			rec.SkipErrors = map[int]string{}
		}
		rec.SkipErrors[i] = err.Error()
	}
}

// Select returns the documents of the examples at idx (indices into the
// examples t was made of, in the order given) with their outcomes, skip
// errors and keys, and counts them as TokenizeAll of those examples alone
// would: the same documents in the same order and the same Stats (the
// examples are tokenised one by one, each the same alone as among
// others). maxPositions is Options.MaxPositions; source names example i
// in Stats.FirstOverPositions for a document without its Source (a token
// cache's: nil names it "example i+1").
func (t Tokenization) Select(idx []int, maxPositions int, source func(i int) string) (Tokenization, error) {
	doc := make([]int, len(t.Outcomes)) // example -> document, -1 for none
	n := 0
	for i, o := range t.Outcomes {
		doc[i] = -1
		if o == Kept || o == Truncated {
			doc[i] = n
			n++
		}
	}
	if n != len(t.Docs) {
		return Tokenization{}, fmt.Errorf("prep: select: %d documents for %d kept examples", len(t.Docs), n)
	}
	out := Tokenization{Outcomes: make([]Outcome, len(idx)), Docs: make([]Tokenized, 0, len(idx))}
	if t.Keys != nil {
		out.Keys = make([]uint64, len(idx))
	}
	for k, i := range idx {
		if i < 0 || i >= len(t.Outcomes) {
			return Tokenization{}, fmt.Errorf("prep: select: example %d of %d", i, len(t.Outcomes))
		}
		o := t.Outcomes[i]
		out.Outcomes[k] = o
		if out.Keys != nil {
			out.Keys[k] = t.Keys[i]
		}
		if o == Skipped {
			why := t.SkipErrors[i]
			out.Stats.skip(errors.New(why))
			if out.SkipErrors == nil {
				out.SkipErrors = map[int]string{}
			}
			out.SkipErrors[k] = why
			continue
		}
		var d Tokenized
		if doc[i] >= 0 {
			d = t.Docs[doc[i]]
			if d.Source == "" {
				d.Source = fmt.Sprintf("example %d", i+1)
				if source != nil {
					d.Source = source(i)
				}
			}
			out.Docs = append(out.Docs, d)
		}
		out.Stats.add(d, o, maxPositions)
	}
	return out, nil
}

// ExampleKey identifies an example by its content (its JSON, which leaves
// out where it was read): two examples with one key are the same word for
// word (64 bits: a chance collision among a million examples is about one
// in 10^7).
func ExampleKey(ex format.Example) uint64 {
	b, _ := json.Marshal(ex)
	h := sha256.Sum256(b)
	return binary.LittleEndian.Uint64(h[:8])
}

// ExampleKeys is ExampleKey of each example.
func ExampleKeys(exs []format.Example) []uint64 {
	out := make([]uint64, len(exs))
	for i, ex := range exs {
		out[i] = ExampleKey(ex)
	}
	return out
}
