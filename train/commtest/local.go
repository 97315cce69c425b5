// Package commtest is an in-process dist.Comm for tests: N workers as
// goroutines of one test, exchanging through channels, so data-parallel
// training is tested without MPI. Nothing outside tests imports it.
package commtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/ftune/ftune/dist"
)

// Timeout bounds how long a collective waits for the other workers: a test
// whose workers diverge fails with the ranks that did not arrive instead of
// hanging.
var Timeout = 2 * time.Minute

// Local returns the n workers of one in-process job; worker i has rank i.
// Each must be used from its own goroutine.
func Local(n int) []dist.Comm {
	w := &world{n: n}
	w.cur = w.newRound()
	out := make([]dist.Comm, n)
	for r := range out {
		out[r] = &worker{w: w, rank: r}
	}
	return out
}

// Run calls fn for every worker of a job of n, each in its own goroutine,
// and returns their errors by rank.
func Run(n int, fn func(c dist.Comm) error) []error {
	comms := Local(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = fn(c)
		}()
	}
	wg.Wait()
	return errs
}

type world struct {
	n   int
	mu  sync.Mutex
	cur *round
}

// round is one collective: every worker contributes, the last to arrive
// combines and closes done.
type round struct {
	op      []string
	in      [][]byte
	f32     [][]float32
	f64     [][]float64
	arrived int
	done    chan struct{}
	err     error
	sum32   []float32
	sum64   []float64
}

func (w *world) newRound() *round {
	return &round{op: make([]string, w.n), in: make([][]byte, w.n), f32: make([][]float32, w.n), f64: make([][]float64, w.n), done: make(chan struct{})}
}

type worker struct {
	w    *world
	rank int
	last chan struct{} // closed when the collective started last is complete
}

// pending is a collective of one worker, started in order after the ones
// it started before (a nonblocking one may still be running): rounds pair
// collectives by the order they were started, as MPI does.
type pending struct {
	done chan struct{}
	err  error
}

func (p *pending) Wait() error {
	<-p.done
	return p.err
}

// start runs op once this worker's earlier collectives are complete.
func (c *worker) start(op func() error) *pending {
	p := &pending{done: make(chan struct{})}
	prev := c.last
	c.last = p.done
	go func() {
		if prev != nil {
			<-prev
		}
		p.err = op()
		close(p.done)
	}()
	return p
}

func (c *worker) Rank() int      { return c.rank }
func (c *worker) Size() int      { return c.w.n }
func (c *worker) Engine() string { return fmt.Sprintf("commtest:%d goroutines", c.w.n) }
func (c *worker) Close() error   { return nil }

// collective contributes to the current round and waits for its result.
func (c *worker) collective(op string, put func(r *round)) (*round, error) {
	w := c.w
	w.mu.Lock()
	r := w.cur
	r.op[c.rank] = op
	put(r)
	r.arrived++
	if r.arrived == w.n {
		r.combine(w.n)
		close(r.done)
		w.cur = w.newRound()
	}
	w.mu.Unlock()
	select {
	case <-r.done:
		return r, r.err
	case <-time.After(Timeout):
		w.mu.Lock()
		var missing []int
		for i, o := range r.op {
			if o == "" {
				missing = append(missing, i)
			}
		}
		w.mu.Unlock()
		return nil, fmt.Errorf("commtest: rank %d waited %v in %s for ranks %v", c.rank, Timeout, op, missing)
	}
}

// combine sums (in rank order: every worker gets the same bits) or picks
// the broadcast root, after checking that every worker called the same
// operation on the same length.
func (r *round) combine(n int) {
	for i := 1; i < n; i++ {
		if r.op[i] != r.op[0] {
			r.err = fmt.Errorf("commtest: rank 0 called %s but rank %d called %s", r.op[0], i, r.op[i])
			return
		}
	}
	switch {
	case r.f32[0] != nil:
		r.sum32 = make([]float32, len(r.f32[0]))
		for _, b := range r.f32 {
			for j, v := range b {
				r.sum32[j] += v
			}
		}
	case r.f64[0] != nil:
		r.sum64 = make([]float64, len(r.f64[0]))
		for _, b := range r.f64 {
			for j, v := range b {
				r.sum64[j] += v
			}
		}
	}
}

func (c *worker) AllReduceSumF32(buf []float32) error {
	return c.start(func() error { return c.allReduceF32("AllReduceSumF32", buf) }).Wait()
}

// IAllReduceSumF32 reads buf and writes the sum into it when the
// collective's turn comes, on another goroutine: a caller that touches buf
// before Wait races with it (go test -race reports that).
func (c *worker) IAllReduceSumF32(buf []float32) (dist.Request, error) {
	return c.start(func() error { return c.allReduceF32("IAllReduceSumF32", buf) }), nil
}

func (c *worker) allReduceF32(op string, buf []float32) error {
	r, err := c.collective(fmt.Sprintf("%s[%d]", op, len(buf)), func(r *round) { r.f32[c.rank] = append(make([]float32, 0, len(buf)), buf...) })
	if err != nil {
		return err
	}
	copy(buf, r.sum32)
	return nil
}

func (c *worker) AllReduceSumF64(buf []float64) error {
	return c.start(func() error {
		r, err := c.collective(fmt.Sprintf("AllReduceSumF64[%d]", len(buf)), func(r *round) { r.f64[c.rank] = append(make([]float64, 0, len(buf)), buf...) })
		if err != nil {
			return err
		}
		copy(buf, r.sum64)
		return nil
	}).Wait()
}

func (c *worker) Broadcast(buf []byte, root int) error {
	return c.start(func() error {
		r, err := c.collective(fmt.Sprintf("Broadcast[%d] from %d", len(buf), root), func(r *round) { r.in[c.rank] = append([]byte(nil), buf...) })
		if err != nil {
			return err
		}
		copy(buf, r.in[root])
		return nil
	}).Wait()
}

func (c *worker) Barrier() error {
	return c.start(func() error {
		_, err := c.collective("Barrier", func(*round) {})
		return err
	}).Wait()
}
