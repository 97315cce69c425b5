package prep

import (
	"sync"
	"sync/atomic"

	"github.com/ftune/ftune/data/format"
)

// Parallel tokenising. Examples are independent of each other, so workers
// take chunks of consecutive ones and write each example's result in its
// place; the caller's goroutine then goes through the results in order as
// tokenizeSerial goes through the examples, so documents, Stats and the
// first error are the serial loop's by construction. They do so a window
// of examples at a time (chunksPerWindow), so that the documents the
// caller does not keep are let go of as they are tokenised.
//
// What workers share: Enc and Tmpl (data/tokenizer's Tokenizer and
// data/chat's Template are safe for concurrent use: the tokenizer's word
// cache is behind a lock, each regexp2 search takes a compiled copy of its
// own with a budget of its own, and each rendering has its own variables
// and budget) and the context, which is only read. What they do not: the
// memoised template probes (templateProbes, written as they are first
// needed), which each worker has a set of its own; and Tally, which only
// the caller's goroutine merges into.
//
// Two of a chat template's limits are not an example's alone: a
// rendering's wall time (chat.Limits.Timeout) and the growth of the whole
// process's heap while it runs (MaxMemory), to which the other workers'
// allocations add. So an example that fails among workers is tokenised
// again alone, once they have stopped, and that result counts: the
// example meets the limits as the serial loop would have it meet them.

// maxChunk bounds the examples a worker takes at a time. Smaller chunks
// for few examples spread them over the workers evenly.
const maxChunk = 64

// chunksPerWindow is how many chunks of maxChunk each worker has in a
// window: the examples the workers tokenise before the caller's goroutine
// takes their documents (and the caller's keep may let them go). A
// window bounds the documents held at once to a few thousand, whatever
// the number of examples (all of them were held, even by a caller that
// only counted them); the workers wait for the slowest chunk once a
// window, a small share of it.
const chunksPerWindow = 8

// tokResult is one example's Tokenize.
type tokResult struct {
	t    Tokenized
	o    Outcome
	err  error
	done bool
}

// tokenizeParallel is tokenizeEach on workers goroutines, a window of
// examples at a time.
func (p *Preprocessor) tokenizeParallel(exs []format.Example, workers int, rec *Tokenization, keep func(Tokenized)) (Stats, error) {
	n := len(exs)
	window := workers * maxChunk * chunksPerWindow
	res := make([]tokResult, min(n, window)) // res[i-from]: example i's
	from := 0                                // the first example in res
	done := 0
	report := func(k int) {
		done += k
		if p.Progress != nil {
			p.Progress(done, n)
		}
	}
	var st Stats
	for i := range exs {
		if i-from == len(res) {
			from = i // the next window; res was emptied as it was read
		}
		if !res[i-from].done {
			// The first pass over the window (or, after an error that the
			// workers stopped at and that tokenising alone did not give,
			// the rest of it).
			p.runWorkers(exs[from:min(from+len(res), n)], res, i-from, workers, report)
		}
		r := res[i-from]
		res[i-from] = tokResult{} // the document is keep's now
		if r.err != nil {
			r.t, r.o, r.err = p.Tokenize(exs[i]) // alone, see above
			if r.err != nil {
				if p.skips(r.err) {
					st.skip(r.err)
					rec.note(i, Skipped, r.err)
					continue
				}
				return st, r.err
			}
		}
		st.add(r.t, r.o, p.Opts.MaxPositions)
		rec.note(i, r.o, nil)
		if r.o == Kept || r.o == Truncated {
			keep(r.t)
		}
	}
	return st, nil
}

// runWorkers tokenises the examples from `from` on that are not done yet
// into res (res[i]: exs[i]'s), on workers goroutines, and returns once
// they have stopped. After an error that SkipBad does not skip, the
// examples past it are not started (the serial loop stops there). report
// hears, on the caller's goroutine, how many more examples are done as
// chunks finish.
func (p *Preprocessor) runWorkers(exs []format.Example, res []tokResult, from, workers int, report func(int)) {
	n := len(exs)
	chunk := min(maxChunk, max(1, (n-from)/(workers*8)))
	var next atomic.Int64 // the start of the next chunk to take
	next.Store(int64(from))
	var stop atomic.Int64 // the earliest failed example that stops the run
	stop.Store(int64(n))
	finished := make(chan int, workers)
	var wg sync.WaitGroup
	var panicked atomic.Value // a worker's panic, raised again on the caller's goroutine
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					panicked.CompareAndSwap(nil, panicValue{v})
					stop.Store(-1)
				}
			}()
			q := *p
			q.probes = &templateProbes{}
			for {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= n || int64(start) > stop.Load() {
					return
				}
				k := 0
				for i := start; i < min(start+chunk, n) && int64(i) <= stop.Load(); i++ {
					r := &res[i]
					if r.done {
						continue
					}
					r.t, r.o, r.err = q.Tokenize(exs[i])
					r.done = true
					k++
					if r.err != nil && !q.skips(r.err) {
						lower(&stop, int64(i))
					}
				}
				finished <- k
			}
		}()
	}
	go func() {
		wg.Wait()
		close(finished)
	}()
	for k := range finished {
		if k > 0 {
			report(k)
		}
	}
	if v, ok := panicked.Load().(panicValue); ok {
		panic(v.v)
	}
}

// panicValue boxes a recovered value for atomic.Value, which takes one
// concrete type.
type panicValue struct{ v any }

// lower sets a to v when v is less.
func lower(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v >= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
