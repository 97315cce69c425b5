package train

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// QA is one held-out question with its reference answer, already rendered
// to prompt token ids (chat template with the generation prompt). The
// rendering is encoded without the tokenizer's special tokens: the
// template writes its BOS itself, as transformers' apply_chat_template
// assumes (a raw prompt, ftune.Model.Generate, gets them instead).
type QA struct {
	Subject  string
	Question string
	Answer   string
	Prompt   []int
	// Choices, when set, are candidate answers (the reference among them)
	// for multiple-choice scoring by log-likelihood; each is tokenised
	// as it would follow the prompt.
	Choices   []string
	ChoiceIDs [][]int
	Correct   int // index of the reference in Choices
}

// QAResult is the outcome of one question.
type QAResult struct {
	QA
	Generated  string
	ExactMatch bool
	Contains   bool
	Picked     int // multiple choice: the choice with the highest log-likelihood (-1 if none)
	// PickedNorm is the choice with the highest log-likelihood per byte of
	// its text (lm-eval's acc_norm), -1 if none.
	PickedNorm int
}

// QAReport aggregates QAResults overall and per subject.
type QAReport struct {
	Results []QAResult
	// Per subject (and "" for all): exact match, contains and multiple-choice
	// accuracy, each in [0,1]. ChoiceAccuracy picks by the summed
	// log-likelihood (lm-eval's acc), ChoiceNormAccuracy by the
	// log-likelihood per byte of the choice (acc_norm), which does not
	// favour short answers.
	ExactMatch, Contains, ChoiceAccuracy, ChoiceNormAccuracy map[string]float64
}

// Normalize lowercases, drops punctuation and the articles a/an/the, and
// collapses whitespace (SQuAD-style answer normalisation).
func Normalize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case unicode.IsSpace(r) || unicode.IsPunct(r):
			b.WriteRune(' ')
		}
	}
	var words []string
	for _, w := range strings.Fields(b.String()) {
		if w != "a" && w != "an" && w != "the" {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// SplitThinking separates a reply's <think> block from its answer, as
// Qwen3's chat template splits an assistant content: the answer is what
// follows the last </think> (leading newlines dropped), the thinking what
// lies between <think> and the first </think>. A reply that opened a
// <think> block and never closed it stopped while thinking: it has no
// answer. Text without the tags is all answer. A generation prompt that
// already ends with <think> leaves only the closing tag in the reply,
// which splits the same way.
func SplitThinking(text string) (thinking, answer string) {
	if i := strings.LastIndex(text, "</think>"); i >= 0 {
		thinking = text[:strings.Index(text, "</think>")]
		if j := strings.LastIndex(thinking, "<think>"); j >= 0 {
			thinking = thinking[j+len("<think>"):]
		}
		return strings.Trim(thinking, "\n"), strings.TrimLeft(text[i+len("</think>"):], "\n")
	}
	if i := strings.Index(text, "<think>"); i >= 0 {
		return strings.TrimLeft(text[i+len("<think>"):], "\n"), ""
	}
	return "", text
}

// Decoder turns generated ids into text.
type Decoder interface {
	Decode(ids []int, skipSpecial bool) (string, error)
}

// EvaluateQA generates an answer for every question (greedy unless opt
// says otherwise) and scores exact match and containment after Normalize,
// on the answer after any <think> block the model wrote (SplitThinking);
// Generated keeps the whole reply;
// questions with choices are also scored by comparing the log-likelihood
// of each choice. before, when set, is called for each question first
// (per-subject adapter routing sets the subject's adapter there).
//
// A cancelled ctx stops it between two generated tokens or two questions,
// with an error wrapping ctx.Err() that names no command (a run's
// evaluation and ftune eval's both ask the questions).
func EvaluateQA(ctx context.Context, m *nn.Model, dec Decoder, qs []QA, opt nn.GenerateOptions, before func(subject string) error) (*QAReport, error) {
	rep := &QAReport{ExactMatch: map[string]float64{}, Contains: map[string]float64{}, ChoiceAccuracy: map[string]float64{}, ChoiceNormAccuracy: map[string]float64{}}
	count := map[string]float64{}
	mcCount := map[string]float64{}
	onToken := opt.OnToken
	opt.OnToken = func(id int) bool {
		return ctx.Err() == nil && (onToken == nil || onToken(id))
	}
	for i, q := range qs {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluation stopped after %d of %d questions: %w", i, len(qs), ctx.Err())
		}
		if before != nil {
			if err := before(q.Subject); err != nil {
				return nil, err
			}
		}
		ids, err := m.Generate(q.Prompt, opt)
		if err != nil {
			return nil, fmt.Errorf("train: generating for %q: %w", q.Question, err)
		}
		if ctx.Err() != nil { // the answer was cut short: not scored
			return nil, fmt.Errorf("evaluation stopped after %d of %d questions: %w", i, len(qs), ctx.Err())
		}
		text, err := dec.Decode(ids, true)
		if err != nil {
			return nil, err
		}
		r := QAResult{QA: q, Generated: strings.TrimSpace(text), Picked: -1, PickedNorm: -1}
		_, answer := SplitThinking(text)
		got, want := Normalize(answer), Normalize(q.Answer)
		r.ExactMatch = got == want
		r.Contains = want != "" && strings.Contains(" "+got+" ", " "+want+" ")
		if len(q.ChoiceIDs) > 0 {
			if r.Picked, r.PickedNorm, err = ScoreChoices(m, q); err != nil {
				return nil, err
			}
		}
		for _, s := range []string{"", q.Subject} {
			count[s]++
			rep.ExactMatch[s] += b2f(r.ExactMatch)
			rep.Contains[s] += b2f(r.Contains)
			if len(q.ChoiceIDs) > 0 {
				mcCount[s]++
				rep.ChoiceAccuracy[s] += b2f(r.Picked == q.Correct)
				rep.ChoiceNormAccuracy[s] += b2f(r.PickedNorm == q.Correct)
			}
		}
		rep.Results = append(rep.Results, r)
	}
	for s, n := range count {
		rep.ExactMatch[s] /= n
		rep.Contains[s] /= n
	}
	for s, n := range mcCount {
		rep.ChoiceAccuracy[s] /= n
		rep.ChoiceNormAccuracy[s] /= n
	}
	return rep, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ScoreChoices scores q's choices by the log-likelihood of their tokens
// after the prompt, Σ log p(choice token | prompt, earlier choice tokens),
// one forward pass per choice. picked has the highest sum; pickedNorm the
// highest sum divided by the byte length of the choice's text (lm-eval's
// acc_norm; the token count when q.Choices does not hold the texts). A
// long answer loses on the sum only because it has more tokens to pay
// for; normalised, it is compared per byte.
func ScoreChoices(m *nn.Model, q QA) (picked, pickedNorm int, err error) {
	picked, pickedNorm = -1, -1
	best, bestNorm := math.Inf(-1), math.Inf(-1)
	for i, c := range q.ChoiceIDs {
		ll, err := LogLikelihood(m, q.Prompt, c)
		if err != nil {
			return -1, -1, err
		}
		n := len(c)
		if len(q.Choices) == len(q.ChoiceIDs) && len(q.Choices[i]) > 0 {
			n = len(q.Choices[i])
		}
		if ll > best {
			picked, best = i, ll
		}
		if norm := ll / float64(n); norm > bestNorm {
			pickedNorm, bestNorm = i, norm
		}
	}
	return picked, pickedNorm, nil
}

// LogLikelihood is Σ log p(cont[i] | prompt, cont[:i]). Non-finite logits
// give an error wrapping nn.ErrNonFinite.
func LogLikelihood(m *nn.Model, prompt, cont []int) (float64, error) {
	if len(cont) == 0 {
		return 0, fmt.Errorf("train: empty continuation")
	}
	seq := append(append([]int(nil), prompt...), cont...)
	ids := make([]int64, len(seq))
	for i, t := range seq {
		ids[i] = int64(t)
	}
	// An inference pass: its activations, then its logits and input, go
	// back to the backend (a GPU's allocator) rather than to the collector.
	in := tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))
	out, err := m.Forward(autograd.NewInference(), nn.Batch{InputIDs: in}, nn.ForwardOptions{})
	if err != nil {
		return 0, err
	}
	V := m.Config.VocabSize
	lg := out.Logits.Value.Narrow(1, len(prompt)-1, len(cont)).F64()
	if err := tensor.ReleaseAll(out.Logits.Value, in); err != nil {
		return 0, err
	}
	var ll float64
	for i, tok := range cont {
		row := lg[i*V : (i+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(v - mx)
		}
		ll += row[tok] - mx - math.Log(z)
	}
	// From finite logits the sum is finite: a NaN or Inf one means the
	// logits were not, and a choice picked by it would be garbage.
	if math.IsNaN(ll) || math.IsInf(ll, 0) {
		return 0, fmt.Errorf("train: log-likelihood of a %d-token continuation is %v: %w: the model's weights or its adapter hold NaN or Inf values", len(cont), ll, nn.ErrNonFinite)
	}
	return ll, nil
}
