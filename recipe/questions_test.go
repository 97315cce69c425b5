package recipe

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/train"
)

// TestQuestionAnswerWithoutThinking: the reference answer of a held-out
// question is the last assistant answer without its thinking, whether the
// thinking is a <think> block in the content or reasoning_content, and so
// are the distractors drawn from the training answers.
func TestQuestionAnswerWithoutThinking(t *testing.T) {
	p, err := LoadTextFor(qwen3Model(t), "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	ex := func(q, content, reasoning string) format.Example {
		return format.Example{Messages: []format.Message{{Role: "user", Content: q}, {Role: "assistant", Content: content, ReasoningContent: reasoning}}}
	}
	test := []format.Example{
		ex("Capital of Peru?", "<think>\nIn South America.\n</think>\n\nLima", ""),
		ex("Capital of Chile?", "Santiago", "In South America too."),
	}
	trainExs := []format.Example{ex("Capital of Ecuador?", "<think>\nAndes.\n</think>\n\nQuito", "")}
	qs, err := questions(p, "geo", test, trainExs, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].Answer != "Lima" || qs[1].Answer != "Santiago" {
		t.Fatalf("answers %q, want Lima and Santiago", answersOf(qs))
	}
	if !slices.Contains(qs[0].Choices, "Quito") {
		t.Errorf("choices %q, want the training answer Quito without its thinking", qs[0].Choices)
	}
}

func answersOf(qs []train.QA) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.Answer)
	}
	return out
}
