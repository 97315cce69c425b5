package prep

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftune/ftune/data/format"
)

func fakeChats(n int) []format.Example {
	exs := make([]format.Example, n)
	for i := range exs {
		exs[i] = format.Example{Messages: msgs("user", fmt.Sprintf("Q%d", i), "assistant", strings.Repeat("a", i%50+1)), Source: fmt.Sprintf("d.jsonl:%d", i+1)}
	}
	return exs
}

// TestParallelRetriesAlone: an example that fails among workers for a
// limit that counts the others' work too (a rendering's wall time, the
// process's heap) is tokenised again alone, and that result counts: the
// documents and Stats are those of a run where it never failed, and the
// examples after it, which the workers stopped short of, are tokenised:
// in the first window of examples the workers take or a later one.
func TestParallelRetriesAlone(t *testing.T) {
	exs := fakeChats(5000)
	for _, c := range []struct {
		flaky int
		skip  bool
	}{{300, false}, {300, true}, {4*maxChunk*chunksPerWindow + 700, false}} {
		flaky, skip := c.flaky, c.skip
		var failed atomic.Bool
		tmpl := RenderFunc(func(ms []format.Message, gen bool) (string, error) {
			if len(ms) == 2 && ms[0].Content == fmt.Sprintf("Q%d", flaky) && failed.CompareAndSwap(false, true) {
				return "", errors.New("over the rendering budget: the heap grew while rendering")
			}
			return chatML{}.Render(ms, gen)
		})
		want, wantSt, err := (&Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Workers: 1}).TokenizeAll(exs)
		if err != nil {
			t.Fatal(err)
		}
		p := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: tmpl, EOS: fakeEOT, Workers: 4}
		if skip {
			p.SkipBad = func(error) bool { return true }
		}
		got, st, err := p.TokenizeAll(exs)
		if err != nil || !failed.Load() {
			t.Fatalf("example %d, skip %v: err %v, failed once %v", flaky, skip, err, failed.Load())
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(st, wantSt) {
			t.Errorf("example %d, skip %v: %d documents, stats %+v; want %d, %+v", flaky, skip, len(got), st, len(want), wantSt)
		}
	}
}

// TestTokenizeEachLetsDocumentsGo: TokenizeEach hands the documents over
// a window of examples at a time, so that a caller that counts them and
// lets them go holds a window's, not every example's (data validate held
// all the tokens of a corpus): the first document comes before the
// examples past the first window are tokenised. The documents, in order,
// and the Stats are TokenizeAll's, serial or parallel.
func TestTokenizeEachLetsDocumentsGo(t *testing.T) {
	const workers = 2
	window := workers * maxChunk * chunksPerWindow
	exs := make([]format.Example, 3*window+5) // texts: one encoding each
	for i := range exs {
		exs[i] = format.Example{Text: strings.Repeat("a", i%50+1), Source: fmt.Sprintf("d.txt:%d", i+1)}
	}
	var encoded atomic.Int64
	enc := EncoderFunc(func(s string, add bool) ([]int, error) {
		encoded.Add(1)
		return byteEncoder{}.Encode(s, add)
	})
	want, wantSt, err := (&Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Workers: 1}).TokenizeAll(exs)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, workers} {
		encoded.Store(0)
		var got []Tokenized
		first := int64(-1) // examples encoded when the first document came
		p := &Preprocessor{Enc: enc, Tmpl: chatML{}, EOS: fakeEOT, Workers: w}
		st, err := p.TokenizeEach(exs, func(d Tokenized) {
			if first < 0 {
				first = encoded.Load()
			}
			got = append(got, d)
		})
		if err != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(st, wantSt) {
			t.Errorf("%d workers: err %v, %d documents, stats %+v; want %d, %+v", w, err, len(got), st, len(want), wantSt)
		}
		if first < 0 || first > int64(window) {
			t.Errorf("%d workers: the first document came after %d of %d examples were encoded, want a window of %d at most", w, first, len(exs), window)
		}
	}
}

// TestParallelPanic: a panic on a worker (an Encoder's bug) reaches the
// caller's goroutine, as it does in the serial loop.
func TestParallelPanic(t *testing.T) {
	enc := EncoderFunc(func(s string, _ bool) ([]int, error) {
		if strings.Contains(s, "Q77<") {
			panic("encoder bug")
		}
		return byteEncoder{}.Encode(s, false)
	})
	defer func() {
		if v := recover(); v != "encoder bug" {
			t.Errorf("recovered %v", v)
		}
	}()
	p := &Preprocessor{Enc: enc, Tmpl: chatML{}, EOS: fakeEOT, Workers: 4}
	p.TokenizeAll(fakeChats(500))
	t.Error("no panic")
}

// TestSkipBad: with SkipBad, an example over a limit of its own is
// counted and left out; without it, it is the error. A template that
// fails on the probe conversations is no example's fault and stops the
// run either way.
func TestSkipBad(t *testing.T) {
	exs := fakeChats(100)
	exs[40].Messages = msgs("user", "a", "assistant", "b", "user", "c", "assistant", "d")
	exs[60].Text, exs[60].Messages = strings.Repeat("z", 3000), nil
	tooLong := errors.New("over the tokenizer's bound")
	enc := EncoderFunc(func(s string, add bool) ([]int, error) {
		if len(s) > 2000 {
			return nil, fmt.Errorf("encode: %w", tooLong)
		}
		return byteEncoder{}.Encode(s, add)
	})
	for _, w := range []int{1, 4} {
		p := &Preprocessor{Enc: enc, Tmpl: chatML{}, EOS: fakeEOT, Opts: Options{MaxMessages: 3}, Workers: w}
		if _, st, err := p.TokenizeAll(exs); !errors.Is(err, ErrRecordLimit) || !strings.Contains(err.Error(), "d.jsonl:41: 4 messages in one record") || st.Examples != 40 {
			t.Errorf("%d workers, no SkipBad: err %v, %d examples before it", w, err, st.Examples)
		}
		p.SkipBad = func(err error) bool { return errors.Is(err, tooLong) }
		docs, st, err := p.TokenizeAll(exs)
		if err != nil || len(docs) != 98 || st.Examples != 100 || st.Kept != 98 || st.Skipped != 2 ||
			len(st.SkipErrors) != 2 || !strings.HasPrefix(st.SkipErrors[0], "d.jsonl:41: ") || !strings.HasPrefix(st.SkipErrors[1], "d.jsonl:61: encode: ") {
			t.Errorf("%d workers, SkipBad: err %v, %d documents, %+v", w, err, len(docs), st)
		}
		if err := (Stats{Examples: 2, Skipped: 2, SkipErrors: []string{"d.jsonl:1: why"}}).NoneKeptError("subject x", 9); err == nil || !strings.Contains(err.Error(), "2 skipped for errors of their own (data.skip_bad; the first: d.jsonl:1: why)") {
			t.Errorf("none kept: %v", err)
		}
		// A template over its budget on the probes: not the example's.
		broken := RenderFunc(func(ms []format.Message, gen bool) (string, error) {
			if len(ms) == 1 {
				return "", tooLong
			}
			return chatML{}.Render(ms, gen)
		})
		p = &Preprocessor{Enc: enc, Tmpl: broken, EOS: fakeEOT, Workers: w, SkipBad: func(error) bool { return true }}
		if _, _, err := p.TokenizeAll(exs); !errors.Is(err, tooLong) || !strings.Contains(err.Error(), "d.jsonl:1: render a probe conversation") {
			t.Errorf("%d workers, probes fail: %v", w, err)
		}
	}
}

// TestTokenizeAllUsesWorkers: examples are tokenised on several
// goroutines at once (an encoder that waits a little sees others in it).
func TestTokenizeAllUsesWorkers(t *testing.T) {
	var in, most atomic.Int32
	enc := EncoderFunc(func(s string, add bool) ([]int, error) {
		n := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		return byteEncoder{}.Encode(s, add)
	})
	p := &Preprocessor{Enc: enc, Tmpl: chatML{}, EOS: fakeEOT, Workers: 4}
	if _, _, err := p.TokenizeAll(fakeChats(200)); err != nil {
		t.Fatal(err)
	}
	if most.Load() < 2 {
		t.Errorf("at most %d examples at a time", most.Load())
	}
}
