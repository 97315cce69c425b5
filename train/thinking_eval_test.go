package train_test

import (
	"context"
	"testing"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

func TestSplitThinking(t *testing.T) {
	for _, c := range []struct{ in, thinking, answer string }{
		{"<think>\nTwo and two.\n</think>\n\n4", "Two and two.", "4"},
		{"Two and two.\n</think>\n\n4", "Two and two.", "4"}, // the prompt opened the block
		{"<think>\n\n</think>\n\n4", "", "4"},                // enable_thinking false
		{"<think>\nstill thinking", "still thinking", ""},    // cut while thinking: no answer
		{"4", "", "4"},
	} {
		th, ans := train.SplitThinking(c.in)
		if th != c.thinking || ans != c.answer {
			t.Errorf("SplitThinking(%q) = %q, %q; want %q, %q", c.in, th, ans, c.thinking, c.answer)
		}
	}
}

// textDecoder decodes any ids to one fixed reply.
type textDecoder string

func (d textDecoder) Decode([]int, bool) (string, error) { return string(d), nil }

// TestEvaluateQAAnswerAfterThinking: exact match and containment compare
// the answer after the model's <think> block, not the whole reply (whose
// thinking never equals the reference and may mention it in passing).
func TestEvaluateQAAnswerAfterThinking(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reply := textDecoder("<think>\nIs it Quito? No.\n</think>\n\nLima.")
	qs := []train.QA{
		{Subject: "s", Prompt: []int{1, 5, 9}, Answer: "Lima"},
		{Subject: "s", Prompt: []int{1, 5, 9}, Answer: "Quito"},
	}
	rep, err := train.EvaluateQA(context.Background(), m, reply, qs, nn.GenerateOptions{MaxNewTokens: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; !r.ExactMatch || !r.Contains {
		t.Errorf("reference Lima: exact %v, contains %v; want both (the answer is Lima)", r.ExactMatch, r.Contains)
	}
	if r := rep.Results[1]; r.ExactMatch || r.Contains {
		t.Errorf("reference Quito: exact %v, contains %v; want neither (only the thinking names it)", r.ExactMatch, r.Contains)
	}
	if got := rep.Results[0].Generated; got != string(reply) {
		t.Errorf("Generated %q, want the whole reply", got)
	}
}
