package cuda

import (
	"fmt"
	"math"
)

// TensorList is a set of float32 tensors (parameters with their gradients
// and AdamW moments) whose pointer tables live on the device, so that one
// launch updates them all and a captured graph can replay the step. Build it
// once; the tensors must stay where they are.
type TensorList struct {
	d                         *Device
	N                         int
	params, grads, m, v, size Ptr
	maxSize                   int64
}

// NewTensorList uploads the tables. grads is required; params, m and v may
// be nil when the list is only used for GradNorm.
func (d *Device) NewTensorList(params, grads, m, v []Ptr, sizes []int64) (*TensorList, error) {
	n := len(grads)
	if n == 0 || len(sizes) != n || (params != nil && (len(params) != n || len(m) != n || len(v) != n)) {
		return nil, badArg("NewTensorList: %d params, %d grads, %d m, %d v, %d sizes", len(params), n, len(m), len(v), len(sizes))
	}
	if n > 65535 {
		return nil, badArg("NewTensorList: %d tensors, at most 65535", n)
	}
	l := &TensorList{d: d, N: n}
	for i, s := range sizes {
		if s < 0 {
			return nil, badArg("NewTensorList: tensor %d has size %d", i, s)
		}
		l.maxSize = max(l.maxSize, s)
	}
	up := func(dst *Ptr, vals []uint64) error {
		p, err := d.alloc.Alloc(8 * n)
		if err != nil {
			return err
		}
		*dst = p
		return CopyHtoD(d, p, vals)
	}
	asU64 := func(ps []Ptr) []uint64 {
		out := make([]uint64, len(ps))
		for i, p := range ps {
			out[i] = uint64(p)
		}
		return out
	}
	sz := make([]uint64, n)
	for i, s := range sizes {
		sz[i] = uint64(s)
	}
	if err := up(&l.grads, asU64(grads)); err != nil {
		return nil, err
	}
	if err := up(&l.size, sz); err != nil {
		return nil, err
	}
	if params != nil {
		for _, t := range []struct {
			dst *Ptr
			src []Ptr
		}{{&l.params, params}, {&l.m, m}, {&l.v, v}} {
			if err := up(t.dst, asU64(t.src)); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// SetGrads points the list at new gradient tensors (the same count and
// sizes) with an asynchronous copy of the table on s (QueueHtoD: the host
// does not wait for the step's queued work): a trainer's gradients are
// fresh tensors every step while the parameters and moments stay put, so
// the other tables are uploaded once. Work queued earlier on s still sees
// the old table.
func (l *TensorList) SetGrads(s Stream, grads []Ptr) error {
	if len(grads) != l.N {
		return badArg("SetGrads: %d gradients for a list of %d tensors", len(grads), l.N)
	}
	vals := make([]uint64, len(grads))
	for i, p := range grads {
		vals[i] = uint64(p)
	}
	return QueueHtoD(l.d, s, l.grads, vals)
}

// Free releases the device tables (not the tensors).
func (l *TensorList) Free() error {
	for _, p := range []Ptr{l.params, l.grads, l.m, l.v, l.size} {
		if err := l.d.alloc.Free(p); err != nil {
			return err
		}
	}
	return nil
}

// blocksFor gives the x-extent of a per-tensor grid: enough blocks for the
// largest tensor, at most about two waves over the device.
func (l *TensorList) blocksFor() int {
	b := (l.maxSize + 255) / 256
	lim := int64(max(1, 2*l.d.SMs*8/l.N))
	return int(max(1, min(b, lim)))
}

// GradNorm sets *sumsq to the sum of squares of every gradient, *norm to
// its square root and *scale to the clipping factor min(1, maxNorm/(norm+1e-6))
// (1 when maxNorm <= 0); sumsq, norm and scale are float32 device scalars.
// Nothing returns to the host: AdamW reads scale on the device.
func (d *Device) GradNorm(s Stream, l *TensorList, sumsq, norm, scale Ptr, maxNorm float32) error {
	if err := d.Memset32Async(s, sumsq, 0, 1); err != nil {
		return err
	}
	f, err := d.Kernel("gradnorm_fwd_f32")
	if err != nil {
		return err
	}
	if err := f.Launch(s, Dim3{l.blocksFor(), l.N, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(l.grads).Ptr(l.size).Ptr(sumsq)); err != nil {
		return err
	}
	g, err := d.Kernel("clipscale_fwd_f32")
	if err != nil {
		return err
	}
	return g.Launch(s, Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, new(Args).Ptr(sumsq).F32(maxNorm).Ptr(scale).Ptr(norm))
}

// AdamWConfig holds the optimizer's hyperparameters; Step counts from 1.
type AdamWConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int
}

// AdamW updates every tensor of l in one launch, gradients multiplied by the
// device scalar *scale (0 = no scaling), PyTorch's AdamW semantics.
func (d *Device) AdamW(s Stream, l *TensorList, scale Ptr, c AdamWConfig) error {
	if l.params == 0 {
		return fmt.Errorf("cuda: AdamW on a TensorList built without params and moments")
	}
	if c.Step < 1 {
		return badArg("AdamW: step %d (counts from 1)", c.Step)
	}
	bc1 := float32(1 - math.Pow(float64(c.Beta1), float64(c.Step)))
	bc2 := float32(1 - math.Pow(float64(c.Beta2), float64(c.Step)))
	f, err := d.Kernel("adamw_fwd_f32")
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{l.blocksFor(), l.N, 1}, Dim3{256, 1, 1}, 0,
		new(Args).Ptr(l.params).Ptr(l.grads).Ptr(l.m).Ptr(l.v).Ptr(l.size).Ptr(scale).
			F32(c.LR).F32(c.Beta1).F32(c.Beta2).F32(c.Eps).F32(c.WeightDecay).F32(bc1).F32(bc2))
}
