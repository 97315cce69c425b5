package train_test

import (
	"testing"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"The Hague.":        "hague",
		"  Saint   Lucia! ": "saint lucia",
		"An apple":          "apple",
		"26th":              "26th",
	} {
		if got := train.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

type idDecoder struct{}

func (idDecoder) Decode(ids []int, _ bool) (string, error) {
	s := ""
	for _, id := range ids {
		s += string(rune('a' + id%26))
	}
	return s, nil
}

// TestPickChoiceFollowsLikelihood: among one-token choices, the one picked
// is the model's own greedy (argmax) continuation.
func TestPickChoiceFollowsLikelihood(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 5, 9, 17}
	greedy, err := m.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	other := []int{(greedy[0] + 1) % m.Config.VocabSize}
	qs := []train.QA{{Subject: "s", Prompt: prompt, Answer: "x", ChoiceIDs: [][]int{other, greedy[:1]}, Correct: 1}}
	rep, err := train.EvaluateQA(m, idDecoder{}, qs, nn.GenerateOptions{MaxNewTokens: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Picked != 1 || rep.ChoiceAccuracy["s"] != 1 {
		t.Fatalf("picked %d, want the greedy continuation (1)", rep.Results[0].Picked)
	}
}
