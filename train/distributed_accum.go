package train

import (
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Summing a step's micro-batch gradients so that the result does not
// depend on the number of workers.
//
// A step of GradAccum = K micro-batches ("slots") sums K gradients. One
// process used to add each into a running sum, ((g0+g1)+g2)+g3; two
// workers holding g0+g1 and g2+g3 and all-reducing them round
// differently, and AdamW turns that last-bit difference into an update
// difference of up to the learning rate where a gradient nearly cancels.
// Instead every process sums the slots over one fixed binary tree, a node
// [lo, hi) being the sum of its halves [lo, mid) and [mid, hi) with
// mid = lo + (hi-lo)/2, whatever the number of workers. With two workers
// and K even, worker 0 computes the slots [0, K/2) (the root's left
// child) and worker 1 [K/2, K), so each holds one child of the root and
// the all-reduce of two addends, which float addition makes
// order-free, is the root one process computes: the same bits. A slot
// a worker does not compute, or a parameter it has no gradient for there,
// is an absent leaf (a node with one child present is that child).
//
// Inside one micro-batch nothing changes: its gradient is what autograd
// accumulates into the parameter, bit for bit the same on every process
// that runs it.

// gradTree holds, per parameter, the completed subtrees of the slots added
// so far (at most log2(K)+1 of them: a gradient buffer each).
type gradTree struct {
	slots int
	open  map[*autograd.Var][]treeSpan
	done  map[*autograd.Var]bool // finished early (finishOne from a LeafDone hook)
}

// treeSpan is the sum of slots [lo, hi); g is nil when none of them had a
// gradient.
type treeSpan struct {
	lo, hi int
	g      *tensor.Tensor
}

// newGradTree returns the tree of a step of slots micro-batches, or nil
// when there is nothing to order (one micro-batch: its gradient is the
// step's).
func newGradTree(slots int) *gradTree {
	if slots <= 1 {
		return nil
	}
	return &gradTree{slots: slots, open: map[*autograd.Var][]treeSpan{}, done: map[*autograd.Var]bool{}}
}

// take moves every parameter's gradient (nil for a slot this worker did
// not run) into the tree as slot's leaf; slots come in order.
func (gt *gradTree) take(params map[string]*autograd.Var, slot int) {
	if gt == nil {
		return
	}
	for _, v := range params {
		if !gt.done[v] {
			gt.add(v, slot)
		}
	}
}

func (gt *gradTree) add(v *autograd.Var, slot int) {
	s := append(gt.open[v], treeSpan{slot, slot + 1, v.Grad})
	v.Grad = nil
	for len(s) >= 2 {
		l, r := s[len(s)-2], s[len(s)-1]
		if l.hi != r.lo || !gt.isSplit(l.lo, l.hi, r.hi) {
			break
		}
		s = append(s[:len(s)-2], treeSpan{l.lo, r.hi, addGrads(l.g, r.g)})
	}
	gt.open[v] = s
}

// finish adds absent leaves for slots [next, K) (a short last step, or
// slots other workers compute) and leaves the root in every parameter's
// gradient.
func (gt *gradTree) finish(params map[string]*autograd.Var, next int) {
	if gt == nil {
		return
	}
	for _, v := range params {
		if !gt.done[v] {
			gt.finishOne(v, next)
		}
	}
}

// finishOne is finish for one parameter; a later finish leaves it alone.
//
// The slots from next on are absent, and a node with one child present is
// that child. Each subtree on the stack is the left child of a node on the
// path from the root to slot next, whose right child holds the subtrees
// after it: so the root is the stack summed from the right,
// s0 + (s1 + (… + sn)), in O(log K) additions. (Adding the absent slots one
// by one took K steps: a grad_accum of 10^12 over a 141-batch epoch never
// finished its first step.)
func (gt *gradTree) finishOne(v *autograd.Var, next int) {
	gt.done[v] = true
	s := gt.open[v]
	delete(gt.open, v)
	v.Grad = nil
	if len(s) == 0 {
		return
	}
	if s[0].lo != 0 || s[len(s)-1].hi != next {
		panic("train: gradient tree of the step's micro-batches left incomplete") // slots out of order: a bug here
	}
	g := s[len(s)-1].g
	for i := len(s) - 2; i >= 0; i-- {
		if s[i].hi != s[i+1].lo {
			panic("train: gradient tree of the step's micro-batches has a gap") // a bug here
		}
		g = addGrads(s[i].g, g)
	}
	v.Grad = g
}

// isSplit reports whether [lo, hi) is a node of the tree whose halves are
// [lo, mid) and [mid, hi).
func (gt *gradTree) isSplit(lo, mid, hi int) bool {
	a, b := 0, gt.slots
	for b-a >= 2 {
		m := a + (b-a)/2
		switch {
		case a == lo && b == hi:
			return m == mid
		case hi <= m:
			b = m
		case lo >= m:
			a = m
		default:
			return false
		}
	}
	return false
}

// addGrads is l + r, either of which may be absent; it reuses l and gives
// r's storage back (the tree owns both: a micro-batch's gradient, or a
// subtree's sum), which on a GPU would otherwise wait for Go's collector,
// one gradient set per micro-batch and step.
func addGrads(l, r *tensor.Tensor) *tensor.Tensor {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	}
	tensor.AddInPlace(l, r)
	if err := tensor.Release(r); err != nil {
		panic(&tensor.Error{Err: fmt.Errorf("train: sum of micro-batch gradients: %w", err)})
	}
	return l
}
