package prep_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
)

// varied are n examples of every kind TokenizeAll meets, in a shuffled
// order: chats of one or more turns (some with a system message, some
// ending on a user turn), completions, ones longer than maxLen tokens
// (truncated or dropped), ones whose prompt fills maxLen (nothing left
// to learn), and at index bad one whose answer is over the template's
// string budget (the budget set by limitedTemplate).
func varied(n, bad, maxLen int) []format.Example {
	r := rand.New(rand.NewPCG(7, 8))
	text := randomWords(r)
	exs := make([]format.Example, n)
	for i := range exs {
		var ex format.Example
		switch k := r.IntN(10); {
		case k < 4: // one turn, sometimes with a system message
			if r.IntN(3) == 0 {
				ex.Messages = append(ex.Messages, format.Message{Role: format.RoleSystem, Content: text(5)})
			}
			ex.Messages = append(ex.Messages, format.Message{Role: format.RoleUser, Content: text(1 + r.IntN(20))}, format.Message{Role: format.RoleAssistant, Content: text(1 + r.IntN(30))})
		case k < 6: // several turns, the last sometimes the user's
			for range 1 + r.IntN(4) {
				ex.Messages = append(ex.Messages, format.Message{Role: format.RoleUser, Content: text(1 + r.IntN(10))}, format.Message{Role: format.RoleAssistant, Content: text(1 + r.IntN(10))})
			}
			if r.IntN(4) == 0 {
				ex.Messages = append(ex.Messages, format.Message{Role: format.RoleUser, Content: text(3)})
			}
		case k < 8: // a completion, some longer than maxLen
			ex.Text = text(1 + r.IntN(maxLen))
		case k < 9: // an answer longer than maxLen
			ex.Messages = []format.Message{{Role: format.RoleUser, Content: text(5)}, {Role: format.RoleAssistant, Content: text(maxLen + r.IntN(maxLen))}}
		default: // a prompt that fills maxLen
			ex.Messages = []format.Message{{Role: format.RoleUser, Content: text(maxLen + 10)}, {Role: format.RoleAssistant, Content: text(3)}}
		}
		ex.Source = fmt.Sprintf("varied.jsonl:%d", i+1)
		exs[i] = ex
	}
	exs[bad] = format.Example{Source: fmt.Sprintf("varied.jsonl:%d", bad+1), Messages: []format.Message{
		{Role: format.RoleUser, Content: "long?"}, {Role: format.RoleAssistant, Content: strings.Repeat("x", 100<<10)}}}
	return exs
}

// randomWords returns a text of n common English words drawn from r.
func randomWords(r *rand.Rand) func(n int) string {
	words := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will what can more about out up them some could into other then these two may time only very new like just")
	return func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = words[r.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
}

// tinyTokenizer is tiny-base's tokenizer and its EOS id.
func tinyTokenizer(tb testing.TB) (*tokenizer.Tokenizer, int) {
	tb.Helper()
	tok, err := tokenizer.Load(tinyBase)
	if err != nil {
		tb.Fatal(err)
	}
	eos, _ := tok.EOS()
	return tok, eos
}

// limitedTemplate is tiny-base's template with a string budget of 64 KiB,
// over which a 100 KiB answer goes as a 50 MB one goes over the default.
func limitedTemplate(t *testing.T) *chat.Template {
	tmpl, err := chat.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	l := tmpl.Limits()
	l.MaxValue = 64 << 10
	if tmpl, err = tmpl.WithLimits(l); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// ctxRenderer is recipe's adapter: chat.Template.RenderContext.
func ctxRenderer(t *chat.Template) prep.ContextRenderFunc {
	return func(ctx context.Context, ms []format.Message, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content}
		}
		return t.RenderContext(ctx, cm, gen)
	}
}

// budgetError is what recipe skips under data.skip_bad.
func budgetError(err error) bool {
	return errors.Is(err, chat.ErrBudget) || errors.Is(err, tokenizer.ErrLimit)
}

// tokenizeRun is the whole result of one TokenizeAll.
type tokenizeRun struct {
	docs     []prep.Tokenized
	st       prep.Stats
	err      string
	tally    prep.Stats
	progress [][2]int
}

func tokenizeWith(p prep.Preprocessor, workers int, exs []format.Example) tokenizeRun {
	var run tokenizeRun
	p.Workers = workers
	p.Tally = &run.tally
	run.tally = prep.Stats{Examples: 5, Kept: 5} // a tally that already holds counts
	p.Progress = func(done, total int) { run.progress = append(run.progress, [2]int{done, total}) }
	var err error
	run.docs, run.st, err = p.TokenizeAll(exs)
	if err != nil {
		run.err = err.Error()
	}
	return run
}

// sameRun reports how b differs from a (the serial run), field by field.
func sameRun(t *testing.T, what string, a, b tokenizeRun) {
	t.Helper()
	if a.err != b.err {
		t.Errorf("%s: error %q, want %q", what, b.err, a.err)
	}
	if !reflect.DeepEqual(a.st, b.st) {
		t.Errorf("%s: stats\n%+v, want\n%+v", what, b.st, a.st)
	}
	if !reflect.DeepEqual(a.tally, b.tally) {
		t.Errorf("%s: tally\n%+v, want\n%+v", what, b.tally, a.tally)
	}
	if (a.docs == nil) != (b.docs == nil) || len(a.docs) != len(b.docs) {
		t.Fatalf("%s: %d documents (nil %v), want %d (nil %v)", what, len(b.docs), b.docs == nil, len(a.docs), a.docs == nil)
	}
	for i := range a.docs {
		x, y := a.docs[i], b.docs[i]
		switch {
		case x.Source != y.Source:
			t.Fatalf("%s: document %d is %s, want %s", what, i, y.Source, x.Source)
		case !slices.Equal(x.IDs, y.IDs):
			t.Fatalf("%s: document %d (%s): ids differ", what, i, x.Source)
		case !slices.Equal(x.Labels, y.Labels):
			t.Fatalf("%s: document %d (%s): labels differ", what, i, x.Source)
		case x.Subject != y.Subject:
			t.Fatalf("%s: document %d (%s): subject %d, want %d", what, i, x.Source, y.Subject, x.Subject)
		}
	}
	// Progress rises to what was done; a finished run's ends at the total.
	last := 0
	for _, pr := range b.progress {
		if pr[0] < last || pr[0] > pr[1] {
			t.Fatalf("%s: progress %v", what, b.progress)
		}
		last = pr[0]
	}
	if b.err == "" && len(b.progress) > 0 && last != b.progress[0][1] {
		t.Errorf("%s: progress ends at %d of %d", what, last, b.progress[0][1])
	}
}

// TestTokenizeAllParallelEqualsSerial: on thousands of varied examples
// with the tiny-base tokenizer and template, TokenizeAll on several
// workers gives the serial loop's documents, order, Stats, Tally and
// error (that of the earliest failing example, with the Stats of those
// before it), truncating or dropping, stopping at a bad example or
// skipping it. Run it under -race: the workers share the tokenizer and
// template.
func TestTokenizeAllParallelEqualsSerial(t *testing.T) {
	n, bad := 3000, 1700
	if testing.Short() || raceEnabled {
		n, bad = 1200, 700
	}
	tok, eos := tinyTokenizer(t)
	const maxLen = 64
	exs := varied(n, bad, maxLen)
	base := prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, Tmpl: ctxRenderer(limitedTemplate(t)), EOS: eos}
	for _, tc := range []struct {
		name string
		opts prep.Options
		skip bool
		exs  []format.Example
	}{
		{"truncate, stops at the bad example", prep.Options{MaxLen: maxLen, MaxPositions: 48}, false, exs},
		{"drop, skips the bad example", prep.Options{MaxLen: maxLen, Overflow: prep.Drop}, true, exs},
		{"train on inputs, no bad example", prep.Options{MaxLen: maxLen, TrainOnInputs: true, MaxPositions: 60}, false, slices.Delete(slices.Clone(exs), bad, bad+1)},
		{"no limit, skips the bad example", prep.Options{MaxMessages: 6}, true, exs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.Opts = tc.opts
			if tc.skip {
				p.SkipBad = budgetError
			}
			serial := tokenizeWith(p, 1, tc.exs)
			if len(serial.docs) == 0 && serial.err == "" {
				t.Fatal("nothing tokenised")
			}
			st := serial.st
			t.Logf("serial: %d documents, error %.80q, stats %+v", len(serial.docs), serial.err, st)
			if tc.skip && (st.Skipped == 0 || tc.opts.MaxMessages == 0 && !strings.Contains(st.SkipErrors[0], "over the rendering budget")) {
				t.Fatalf("not skipped: %+v", st)
			}
			if tc.opts.MaxLen > 0 && serial.err == "" && st.Truncated+st.Dropped == 0 || tc.opts.MaxPositions > 0 && st.OverPositions == 0 {
				t.Fatalf("no example over the limits: %+v", st)
			}
			if !tc.skip && len(tc.exs) == len(exs) && !strings.Contains(serial.err, fmt.Sprintf("varied.jsonl:%d: render", bad+1)) {
				t.Fatalf("error %q, want one naming the bad example", serial.err)
			}
			for _, w := range []int{2, 3, 8} {
				sameRun(t, fmt.Sprintf("%d workers", w), serial, tokenizeWith(p, w, tc.exs))
			}
		})
	}
}

// TestTokenizeAllParallelCancelled: cancelling stops the workers; the
// error names an example and wraps the context's.
func TestTokenizeAllParallelCancelled(t *testing.T) {
	tok, _ := tinyTokenizer(t)
	ctx, cancel := context.WithCancel(context.Background())
	tmpl := ctxRenderer(limitedTemplate(t))
	renders := make(chan struct{}, 1)
	counting := prep.ContextRenderFunc(func(ctx context.Context, ms []format.Message, gen bool) (string, error) {
		select {
		case renders <- struct{}{}:
		default:
			cancel() // the second rendering under way or after
		}
		return tmpl(ctx, ms, gen)
	})
	exs := varied(500, 10, 64)
	p := &prep.Preprocessor{Enc: hfOffsetEncoder{hfEncoder{tok}}, Tmpl: counting, Workers: 4}
	docs, _, err := p.TokenizeAllContext(ctx, exs)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "varied.jsonl:") || docs != nil {
		t.Errorf("err %v, %d documents", err, len(docs))
	}
}
