package prep_test

import (
	"fmt"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// A byte-level stand-in for a tokenizer and a two-line template.
var (
	enc = prep.EncoderFunc(func(s string, _ bool) ([]int, error) {
		ids := []int{}
		for _, b := range []byte(s) {
			ids = append(ids, int(b))
		}
		return ids, nil
	})
	tmpl = prep.RenderFunc(func(m []format.Message, gen bool) (string, error) {
		s := ""
		for _, x := range m {
			s += x.Role[:1] + ":" + x.Content + "\n"
		}
		if gen {
			s += "a:"
		}
		return s, nil
	})
)

func Example() {
	p := &prep.Preprocessor{Enc: enc, Tmpl: tmpl, EOS: 0}
	exs := []format.Example{
		{Messages: []format.Message{{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4"}}},
		{Messages: []format.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}}},
	}
	packed, st, _ := p.Rows(exs, prep.RowOptions{Pack: true, SeqLen: 32})
	padded, _, _ := p.Rows(exs, prep.RowOptions{})
	// "u:2+2?\n" "a:" then "4\n" EOS learnt: 12 tokens, 3 learnt;
	// "u:Hi\n" "a:" then "Hello\n" EOS learnt: 14 tokens, 7 learnt.
	fmt.Println("tokens", st.Tokens, "learnt", st.LabelTokens)
	positions, segments := packed[0].Layout()
	fmt.Println("packed rows", len(packed), "segments", segments, "starts", packed[0].Starts)
	fmt.Println("positions", positions)
	fmt.Println("padded rows", len(padded), "targets", prep.Targets(packed), prep.Targets(padded))
	// Output:
	// tokens 26 learnt 10
	// packed rows 1 segments [0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1] starts [0 12]
	// positions [0 1 2 3 4 5 6 7 8 9 10 11 0 1 2 3 4 5 6 7 8 9 10 11 12 13]
	// padded rows 2 targets 10 10
}
