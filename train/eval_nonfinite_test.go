package train_test

import (
	"errors"
	"math"
	"testing"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// TestScoreChoicesRefusesNonFiniteLogits: a model with a NaN weight gives
// NaN log-likelihoods; scoring choices by them is an error wrapping
// nn.ErrNonFinite, not a silent "no choice picked" (Picked -1) scored as
// a wrong answer.
func TestScoreChoicesRefusesNonFiniteLogits(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := m.Layers[0].MLP.Down.Weight.Value
	vals := w.F32()
	vals[0] = float32(math.NaN())
	w.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, w.Shape()...).To(w.DType()))
	q := train.QA{Prompt: []int{1, 5, 9}, ChoiceIDs: [][]int{{3}, {4, 7}}, Correct: 0}
	picked, norm, err := train.ScoreChoices(m, q)
	if !errors.Is(err, nn.ErrNonFinite) {
		t.Fatalf("NaN weight: picked %d (norm %d), err %v; want nn.ErrNonFinite", picked, norm, err)
	}
}
