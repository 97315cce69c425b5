package train_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	rep, err := train.EvaluateQA(context.Background(), m, idDecoder{}, qs, nn.GenerateOptions{MaxNewTokens: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Picked != 1 || rep.ChoiceAccuracy["s"] != 1 {
		t.Fatalf("picked %d, want the greedy continuation (1)", rep.Results[0].Picked)
	}
}

// TestNormalisedChoiceFavoursLongAnswers: a long correct answer that
// loses on the summed log-likelihood (it has more tokens to pay for) wins
// on the log-likelihood per byte (acc_norm); both accuracies are reported.
func TestNormalisedChoiceFavoursLongAnswers(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 5, 9, 17}
	greedy, err := m.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	short, long := greedy[:1], greedy[:2] // the long one pays for a second token
	llShort, err := train.LogLikelihood(m, prompt, short)
	if err != nil {
		t.Fatal(err)
	}
	llLong, err := train.LogLikelihood(m, prompt, long)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"x", "a much longer correct answer"}
	if !(llLong < llShort && llLong/float64(len(texts[1])) > llShort/float64(len(texts[0]))) {
		t.Fatalf("fixture does not set up the case: sums %g (short) and %g (long)", llShort, llLong)
	}
	qs := []train.QA{{Subject: "s", Prompt: prompt, Answer: texts[1], Choices: texts, ChoiceIDs: [][]int{short, long}, Correct: 1}}
	rep, err := train.EvaluateQA(context.Background(), m, idDecoder{}, qs, nn.GenerateOptions{MaxNewTokens: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Picked != 0 || r.PickedNorm != 1 {
		t.Fatalf("picked %d by sum and %d normalised, want 0 and 1", r.Picked, r.PickedNorm)
	}
	if rep.ChoiceAccuracy["s"] != 0 || rep.ChoiceNormAccuracy["s"] != 1 || rep.ChoiceNormAccuracy[""] != 1 {
		t.Fatalf("accuracies %v (sum) and %v (normalised)", rep.ChoiceAccuracy, rep.ChoiceNormAccuracy)
	}
}

type recordSink struct {
	last train.Metrics
	step int
}

func (r *recordSink) Log(step int, m train.Metrics) error { r.last, r.step = m, step; return nil }

func TestMetricsLoggerMFU(t *testing.T) {
	rec := &recordSink{}
	l := &train.MetricsLogger{Sinks: []train.Sink{rec}, ParamCount: 1000, PeakFLOPS: 1e9, FLOPsPerParam: 4}
	tr := &train.Trainer{Cfg: train.Config{LogEvery: 1}}
	tr.State.Step = 1
	if err := l.OnStepEnd(tr, train.Metrics{"train/tokens_per_s": 50000}); err != nil {
		t.Fatal(err)
	}
	// 4 FLOPs per parameter per token · 1000 parameters · 50,000 tokens/s / 1e9 = 0.2
	if got := rec.last["train/mfu"]; got < 0.1999 || got > 0.2001 {
		t.Fatalf("mfu %g, want 0.2", got)
	}
}

// TestMetricsLoggerAveragesTheLoss: a record every 5 steps holds the
// mean of those 5 steps' losses, as transformers logs every
// logging_steps (ftune recorded the 5th step's alone); the step's own
// metrics, which other callbacks read, keep its own loss.
func TestMetricsLoggerAveragesTheLoss(t *testing.T) {
	rec := &recordSink{}
	l := &train.MetricsLogger{Sinks: []train.Sink{rec}}
	tr := &train.Trainer{Cfg: train.Config{LogEvery: 5}}
	for step, loss := range []float64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0.5, 0.25, 0.75} {
		tr.State.Step = step + 1
		tr.State.Losses = append(tr.State.Losses, loss)
		m := train.Metrics{"train/loss": loss}
		if err := l.OnStepEnd(tr, m); err != nil {
			t.Fatal(err)
		}
		if m["train/loss"] != loss {
			t.Fatalf("step %d: the step's metrics say loss %v, want its own %v", step+1, m["train/loss"], loss)
		}
		switch step + 1 {
		case 5:
			if got := rec.last["train/loss"]; got != 7 {
				t.Errorf("record at step 5: loss %v, want the mean of steps 1-5, 7", got)
			}
		case 10:
			if got := rec.last["train/loss"]; got != 2.1 {
				t.Errorf("record at step 10: loss %v, want the mean of steps 6-10, 2.1", got)
			}
		}
	}
	// The run ends at step 12: its last two steps are recorded at the end
	// (they were never logged).
	if err := l.OnTrainEnd(tr); err != nil {
		t.Fatal(err)
	}
	if got := rec.last["train/loss"]; got != 0.5 || rec.step != 12 {
		t.Errorf("record at the end: step %d, loss %v; want step 12 and the mean of steps 11-12, 0.5", rec.step, got)
	}
}

// TestTimerStopsTraining: the Timer callback ends Fit once its budget is
// spent, with the reason recorded.
func TestTimerStopsTraining(t *testing.T) {
	run, _ := newRun(t, 1000)
	run.Callbacks = []train.Callback{&train.Timer{Limit: time.Nanosecond}}
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if run.State.StopReason != "timer" || run.State.Step != 1 {
		t.Fatalf("stopped at step %d (%q), want step 1 by the timer", run.State.Step, run.State.StopReason)
	}
}

// TestEvaluateQAStopsOnCancel: a context cancelled while an answer is
// generated stops it at the next token, and the evaluation ends with the
// context's error instead of scoring a cut-short answer.
func TestEvaluateQAStopsOnCancel(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qs := []train.QA{{Subject: "s", Prompt: []int{1, 5, 9}, Answer: "x"}, {Subject: "s", Prompt: []int{2, 6}, Answer: "y"}}
	ctx, cancel := context.WithCancel(context.Background())
	tokens := 0
	opt := nn.GenerateOptions{MaxNewTokens: 16, OnToken: func(int) bool {
		tokens++
		cancel()
		return true
	}}
	rep, err := train.EvaluateQA(ctx, m, idDecoder{}, qs, opt, nil)
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("EvaluateQA cancelled during the first answer: %v (report %v), want context.Canceled", err, rep)
	}
	// Named without a command's prefix (ftune eval asks questions too).
	if !strings.HasPrefix(err.Error(), "evaluation stopped after 0 of 2 questions: ") {
		t.Errorf("EvaluateQA cancelled: %v, want it to begin \"evaluation stopped after 0 of 2 questions: \"", err)
	}
	if tokens != 1 {
		t.Errorf("%d tokens generated after the cancel, want the one that cancelled", tokens)
	}
}
