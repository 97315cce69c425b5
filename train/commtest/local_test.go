package commtest

import (
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/dist"
)

// TestLocalCollectives: sums, broadcasts and barriers reach every worker.
func TestLocalCollectives(t *testing.T) {
	got := make([][]float64, 3)
	errs := Run(3, func(c dist.Comm) error {
		f32 := []float32{float32(c.Rank()), 1}
		if err := c.AllReduceSumF32(f32); err != nil {
			return err
		}
		f64 := []float64{float64(c.Rank() * 10)}
		if err := c.AllReduceSumF64(f64); err != nil {
			return err
		}
		b := []byte{byte(c.Rank()), byte(c.Rank())}
		if err := c.Broadcast(b, 2); err != nil {
			return err
		}
		if err := c.Barrier(); err != nil {
			return err
		}
		got[c.Rank()] = []float64{float64(f32[0]), float64(f32[1]), f64[0], float64(b[0]), float64(b[1])}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		if want := []float64{3, 3, 30, 2, 2}; !equal(got[r], want) {
			t.Errorf("rank %d: %v, want %v", r, got[r], want)
		}
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLocalMismatchAndTimeout: workers calling different collectives get
// an error naming both; a worker that never arrives is named after Timeout
// instead of hanging the test.
func TestLocalMismatchAndTimeout(t *testing.T) {
	errs := Run(2, func(c dist.Comm) error {
		if c.Rank() == 0 {
			return c.AllReduceSumF32(make([]float32, 2))
		}
		return c.AllReduceSumF64(make([]float64, 2))
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 0 called AllReduceSumF32[2] but rank 1 called AllReduceSumF64[2]") {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	defer func(d time.Duration) { Timeout = d }(Timeout)
	Timeout = 50 * time.Millisecond
	errs = Run(2, func(c dist.Comm) error {
		if c.Rank() == 1 {
			return nil // never arrives
		}
		return c.Barrier()
	})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "rank 0 waited 50ms in Barrier for ranks [1]") {
		t.Errorf("rank 0: %v", errs[0])
	}
}

// TestLocalNonblockingKeepsOrder: nonblocking all-reduces pair with the
// other workers' in the order they were started, around a blocking one
// and whatever order they are waited in; a nonblocking call does not pair
// with a blocking one (as in MPI).
func TestLocalNonblockingKeepsOrder(t *testing.T) {
	got := make([][]float32, 2)
	errs := Run(2, func(c dist.Comm) error {
		a, b := []float32{float32(c.Rank() + 1)}, []float32{float32(10 * (c.Rank() + 1))}
		ra, err := c.IAllReduceSumF32(a)
		if err != nil {
			return err
		}
		rb, err := c.IAllReduceSumF32(b)
		if err != nil {
			return err
		}
		f64 := []float64{1}
		if err := c.AllReduceSumF64(f64); err != nil {
			return err
		}
		if err := rb.Wait(); err != nil {
			return err
		}
		if err := ra.Wait(); err != nil {
			return err
		}
		got[c.Rank()] = []float32{a[0], b[0], float32(f64[0])}
		return nil
	})
	for r, err := range errs {
		if err != nil || len(got[r]) != 3 || got[r][0] != 3 || got[r][1] != 30 || got[r][2] != 2 {
			t.Errorf("rank %d: %v (%v), want [3 30 2]", r, got[r], err)
		}
	}
	errs = Run(2, func(c dist.Comm) error {
		buf := []float32{1}
		if c.Rank() == 0 {
			return c.AllReduceSumF32(buf)
		}
		r, err := c.IAllReduceSumF32(buf)
		if err != nil {
			return err
		}
		return r.Wait()
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 0 called AllReduceSumF32[1] but rank 1 called IAllReduceSumF32[1]") {
			t.Errorf("rank %d: %v, want the blocking/nonblocking mismatch", r, err)
		}
	}
}
