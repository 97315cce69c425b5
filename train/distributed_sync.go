package train

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/tensor"
)

// All-reducing a step's gradients in buckets, overlapped with the backward.
//
// The parameters are laid out once in buckets of whole parameters (about
// BucketFloats float32s each, a larger parameter alone), each bucket
// followed by one presence flag per parameter: 1 where this worker has a
// gradient for it, so that a parameter no worker has a gradient for keeps
// none, as in one process (the optimizer then skips it). Buckets are
// started (IAllReduceSumF32) strictly in bucket order, each as soon as all
// its parameters are in, so every worker starts the same collectives in
// the same order whatever order its gradients complete in.
//
// A parameter is put in its bucket as soon as its gradient is final: the
// autograd tape reports that during the backward (Tape.LeafDone) of this
// worker's last micro-batch of the step; parameters it does not report
// (used only inside gradient-checkpointed blocks, or not at all) are put
// after the backward. With gradient accumulation only that last backward
// overlaps; the earlier ones add into the step's sum first.
//
// The bucket order should follow the order in which the backward
// completes gradients (the last layer's first), or a bucket waits for a
// parameter that completes late. That order is learned in the first step,
// which all-reduces after its backward: rank 0 reports the order its tape
// completed the parameters in and broadcasts it, and every worker lays out
// the same buckets from it.

// DataParallel tunes how workers exchange gradients (Trainer.DP).
type DataParallel struct {
	// SyncAfterBackward all-reduces the gradients after the step's last
	// backward pass instead of during it: to measure what the overlap
	// gains.
	SyncAfterBackward bool
	// BucketFloats is the size of an all-reduce bucket in float32s; 0 is
	// gradBucketFloats.
	BucketFloats int
	// Agree is what the workers must hold the same of besides the
	// trainer's own settings and starting point, compared before
	// training (CheckInSync): whoever builds the trainer fills it in
	// (recipe: the configuration, the training data, the base model).
	Agree []Agreement
	plan  *bucketPlan
}

// bucketPlan is the layout of the parameters' gradients in buckets.
type bucketPlan struct {
	vars   []*autograd.Var // in bucket order
	names  []string
	pos    map[*autograd.Var]int
	bucket []int // per parameter: its bucket
	offset []int // per parameter: where its gradient starts in the bucket
	first  []int // per bucket: its first parameter
	floats []int // per bucket: gradient floats (the flags follow)
	bufs   [][]float32
}

func newBucketPlan(t *Trainer, order []string, capFloats int) *bucketPlan {
	p := &bucketPlan{pos: map[*autograd.Var]int{}}
	for _, name := range order {
		v := t.Params[name]
		n := v.Value.Numel()
		if len(p.first) == 0 || (p.floats[len(p.floats)-1] > 0 && p.floats[len(p.floats)-1]+n > capFloats) {
			p.first, p.floats = append(p.first, len(p.vars)), append(p.floats, 0)
		}
		b := len(p.first) - 1
		p.pos[v] = len(p.vars)
		p.vars, p.names = append(p.vars, v), append(p.names, name)
		p.bucket, p.offset = append(p.bucket, b), append(p.offset, p.floats[b])
		p.floats[b] += n
	}
	for b := range p.first {
		p.bufs = append(p.bufs, make([]float32, p.floats[b]+p.params(b)))
	}
	return p
}

// params is the number of parameters in bucket b.
func (p *bucketPlan) params(b int) int {
	if b+1 < len(p.first) {
		return p.first[b+1] - p.first[b]
	}
	return len(p.vars) - p.first[b]
}

// gradSync is one step's exchange.
type gradSync struct {
	t        *Trainer
	tree     *gradTree
	last     int // this worker's last slot of the step: its backward overlaps
	plan     *bucketPlan
	in       []bool // per parameter: in its bucket
	missing  []int  // per bucket: parameters not in yet
	reqs     []dist.Request
	reported []string // the first step: the order the tape completed parameters in
	err      error
	// exposed is how long finish took: the exchange's time not hidden
	// under the backward (metric train/allreduce_exposed_s).
	exposed time.Duration
}

// startSync begins a step's exchange; nil with one worker.
func (t *Trainer) startSync(tree *gradTree) *gradSync {
	size, rank := t.world()
	if size == 1 {
		return nil
	}
	s := &gradSync{t: t, tree: tree, last: t.Cfg.GradAccum - 1}
	if t.SplitsMicroBatches() {
		s.last = (rank+1)*(t.Cfg.GradAccum/size) - 1
	}
	if t.DP.plan == nil && t.DP.SyncAfterBackward {
		t.DP.plan = newBucketPlan(t, t.names(), t.bucketFloats())
	}
	if t.DP.plan != nil {
		s.begin(t.DP.plan)
	}
	return s
}

func (t *Trainer) bucketFloats() int {
	if t.DP.BucketFloats > 0 {
		return t.DP.BucketFloats
	}
	return gradBucketFloats
}

func (s *gradSync) begin(p *bucketPlan) {
	s.plan, s.in, s.missing = p, make([]bool, len(p.vars)), make([]int, len(p.first))
	for b := range p.first {
		s.missing[b] = p.params(b)
	}
}

// hook is the tape's LeafDone for the micro-batch of the given slot: this
// worker's last one puts each parameter in its bucket as soon as the
// backward completes its gradient (the first step only notes the order).
func (s *gradSync) hook(slot int) func(*autograd.Var) {
	if s == nil || slot != s.last || s.t.DP.SyncAfterBackward {
		return nil
	}
	return func(v *autograd.Var) {
		if s.plan == nil {
			if name := s.t.paramName(v); name != "" {
				s.reported = append(s.reported, name)
			}
			return
		}
		if _, ok := s.plan.pos[v]; !ok {
			return // not a trained parameter (the tape reports every trainable leaf)
		}
		if s.tree != nil && !s.tree.done[v] {
			s.tree.add(v, slot)
			s.tree.finishOne(v, slot+1)
		}
		s.put(v)
	}
}

func (t *Trainer) paramName(v *autograd.Var) string {
	for name, p := range t.Params {
		if p == v {
			return name
		}
	}
	return ""
}

// put copies v's gradient (zeros and flag 0 without one) into its bucket
// and starts the buckets that are now complete, in order.
func (s *gradSync) put(v *autograd.Var) {
	i := s.plan.pos[v]
	if s.in[i] {
		return
	}
	s.in[i] = true
	b := s.plan.bucket[i]
	buf := s.plan.bufs[b]
	dst := buf[s.plan.offset[i] : s.plan.offset[i]+v.Value.Numel()]
	flag := &buf[s.plan.floats[b]+i-s.plan.first[b]]
	if v.Grad != nil {
		copy(dst, gradHost(v.Grad))
		*flag = 1
	} else {
		clear(dst)
		*flag = 0
	}
	s.missing[b]--
	for s.err == nil && len(s.reqs) < len(s.missing) && s.missing[len(s.reqs)] == 0 {
		req, err := s.t.Comm.IAllReduceSumF32(s.plan.bufs[len(s.reqs)])
		if err != nil {
			s.err = fmt.Errorf("train: all-reduce of step %d's gradients (bucket %d of %d): %w", s.t.State.Step+1, len(s.reqs)+1, len(s.missing), err)
			return
		}
		s.reqs = append(s.reqs, req)
	}
}

// finish, after the step's micro-batches (the tree already finished),
// puts the gradients not yet in, sums the loss across workers, waits for
// every bucket and leaves the summed gradients in the parameters.
//
// slotLoss is this worker's share of each micro-batch's loss, by slot;
// they are all-reduced by slot and added in slot order, as one process
// adds them. Split by whole micro-batches, each slot is one worker's
// (the others' 0, and x + 0 = x), so the step's loss is one process's
// bit for bit, whatever the number of workers and micro-batches (summing
// each worker's slots first rounded differently from 4 micro-batches on).
func (s *gradSync) finish(slotLoss []float64) (float64, error) {
	t := s.t
	defer func(start time.Time) { s.exposed = time.Since(start) }(time.Now())
	if s.plan == nil {
		p, err := s.learnPlan()
		if err != nil {
			return 0, err
		}
		s.begin(p)
	}
	for _, v := range s.plan.vars {
		s.put(v)
	}
	if s.err != nil {
		return 0, s.err
	}
	if err := t.Comm.AllReduceSumF64(slotLoss); err != nil {
		return 0, fmt.Errorf("train: all-reduce of step %d's loss: %w", t.State.Step+1, err)
	}
	var lossSum float64
	for _, l := range slotLoss {
		lossSum += l
	}
	for b, req := range s.reqs {
		if err := req.Wait(); err != nil {
			return 0, fmt.Errorf("train: all-reduce of step %d's gradients (bucket %d of %d): %w", t.State.Step+1, b+1, len(s.reqs), err)
		}
	}
	for i, v := range s.plan.vars {
		b := s.plan.bucket[i]
		buf := s.plan.bufs[b]
		if buf[s.plan.floats[b]+i-s.plan.first[b]] == 0 {
			v.Grad = nil // no worker has a gradient for it
			continue
		}
		if v.Grad == nil {
			v.Grad = tensor.Zeros(v.Value.Backend(), tensor.F32, v.Value.Shape()...)
		}
		g := gradHost(v.Grad)
		copy(g, buf[s.plan.offset[i]:])
		setGradHost(v.Grad, g)
	}
	return lossSum, nil
}

// learnPlan lays out the buckets in the order rank 0's tape completed the
// parameters in this (first) step, the others after them by name; rank 0
// broadcasts its order so every worker has the same buckets.
func (s *gradSync) learnPlan() (*bucketPlan, error) {
	t := s.t
	names := t.names()
	order := slices.Clone(s.reported)
	for _, name := range names {
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	index := map[string]int{}
	for i, name := range names {
		index[name] = i
	}
	buf := make([]byte, 4*len(names))
	for i, name := range order {
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(index[name]))
	}
	if err := t.Comm.Broadcast(buf, 0); err != nil {
		return nil, fmt.Errorf("train: agreeing on the gradient buckets: %w", err)
	}
	for i := range order {
		j := int(binary.LittleEndian.Uint32(buf[4*i:]))
		if j >= len(names) {
			return nil, fmt.Errorf("train: rank 0's gradient bucket order names parameter %d of %d: the workers train different parameters", j, len(names))
		}
		order[i] = names[j]
	}
	t.DP.plan = newBucketPlan(t, order, t.bucketFloats())
	return t.DP.plan, nil
}
