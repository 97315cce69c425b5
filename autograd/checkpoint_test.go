package autograd

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// stream is a stand-in random source: each draw returns the next value of
// a counter.
type stream struct{ n float64 }

func (s *stream) draw() float64 { s.n++; return s.n }

func (s *stream) Snapshot() func() {
	saved := s.n
	return func() { s.n = saved }
}

// TestCheckpointReplaysPreservedState: a region that draws from a
// preserved stream (twice, and once more in a nested region) computes with
// checkpointing what it computes without — the first forward draws as
// training does, the recompute draws the same values — and the stream ends
// where the forward left it plus what was drawn between the forward and the
// backward (a data-parallel worker skipping other rows).
func TestCheckpointReplaysPreservedState(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	w := Param(randT(r, 4, 4), "w")
	x := randT(r, 3, 4)
	src := &stream{}
	noisy := func(tp *Tape, h *Var) *Var {
		if !tp.Training() {
			return h
		}
		tp.Preserve(src)
		return tp.Scale(h, src.draw())
	}
	block := func(tp *Tape, in []*Var) []*Var {
		h := noisy(tp, tp.Linear(in[0], w, nil))
		h = tp.Checkpoint(func(tp *Tape, in []*Var) []*Var {
			if tp.Len() != 0 {
				t.Error("a nested region's tape recorded ops")
			}
			return []*Var{noisy(tp, tp.Silu(in[0]))}
		}, h)[0]
		return []*Var{tp.Add(noisy(tp, h), in[0])}
	}
	type result struct {
		loss   float64
		gx, gw []float64
		end    float64
	}
	run := func(ckpt bool) result {
		w.ZeroGrad()
		src.n = 100
		xv := Param(x, "x")
		tp := NewTape()
		var y *Var
		if ckpt {
			y = tp.Checkpoint(block, xv)[0]
		} else {
			y = block(tp, []*Var{xv})[0]
		}
		loss := tp.SumAll(tp.Square(y))
		src.n += 1000 // drawn elsewhere between the forward and the backward
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return result{loss.Value.Item(), xv.Grad.F64(), w.Grad.F64(), src.n}
	}
	plain, ckpt := run(false), run(true)
	if plain.end != 1103 {
		t.Fatalf("plain step left the stream at %v, want 1103 (3 draws)", plain.end)
	}
	if ckpt.loss != plain.loss || ckpt.end != plain.end {
		t.Fatalf("checkpointed: loss %v, stream at %v; plain: loss %v, stream at %v", ckpt.loss, ckpt.end, plain.loss, plain.end)
	}
	for i := range plain.gx {
		if plain.gx[i] != ckpt.gx[i] {
			t.Fatalf("checkpointed dx[%d] = %g, plain %g", i, ckpt.gx[i], plain.gx[i])
		}
	}
	for i := range plain.gw {
		if plain.gw[i] != ckpt.gw[i] {
			t.Fatalf("checkpointed dw[%d] = %g, plain %g", i, ckpt.gw[i], plain.gw[i])
		}
	}

	// Inference draws nothing, checkpointing or not.
	src.n = 7
	var inference *Tape
	inference.Checkpoint(block, Const(x))
	if src.n != 7 {
		t.Fatalf("inference drew from the stream (at %v, want 7)", src.n)
	}
}

// TestCheckpointFirstForwardTape: the tape a region's first forward runs
// on is a training tape that records nothing and refuses Backward.
func TestCheckpointFirstForwardTape(t *testing.T) {
	a := Param(tensor.FromHost(cpu, tensor.F64, []float64{1, 2}, 2), "a")
	var first *Tape
	NewTape().Checkpoint(func(tp *Tape, in []*Var) []*Var {
		if first == nil {
			first = tp
		}
		return []*Var{tp.Square(in[0])}
	}, a)
	if !first.Training() || first.Len() != 0 {
		t.Fatalf("first forward: Training %v, %d ops recorded; want true, 0", first.Training(), first.Len())
	}
	if err := first.Backward(first.SumAll(a)); err == nil || !strings.Contains(err.Error(), "first-forward") {
		t.Fatalf("Backward on the first-forward tape: %v", err)
	}
	var nilTape *Tape
	if nilTape.Training() {
		t.Fatal("a nil tape reports training")
	}
}
