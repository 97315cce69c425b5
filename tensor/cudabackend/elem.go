package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Elementwise ops and reductions through kernels/cuda's strided kernels
// (strided.cu): any strides, broadcast axes with stride 0, float dtypes
// F32, BF16 and F64 (all operands of one dtype). Arithmetic is in double
// on the device and rounded once, as the CPU backend does.

// sameFloat returns the kernels' dtype when every non-nil tensor has the
// same float dtype.
func sameFloat(op string, ts ...*tensor.Tensor) (cuda.DType, error) {
	dt := ts[0].DType()
	for _, t := range ts {
		if t != nil && t.DType() != dt {
			return 0, fmt.Errorf("cuda: %s: mixed dtypes %v and %v", op, dt, t.DType())
		}
	}
	switch dt {
	case tensor.F32, tensor.BF16, tensor.F64:
		return kdt(dt)
	}
	return 0, fmt.Errorf("cuda: %w: %s on %v", tensor.ErrUnsupported, op, dt)
}

func (b *Backend) Binary(op tensor.BinaryOp, dst, a, c *tensor.Tensor) error {
	defer keep(dst, a, c)
	t, err := sameFloat("Binary", dst, a, c)
	if err != nil {
		return err
	}
	if err := tensor.CheckBinary(dst, a, c); err != nil {
		return cudaErr(err)
	}
	if op > tensor.OpEq {
		return fmt.Errorf("cuda: %w: binary op %d", tensor.ErrUnsupported, op)
	}
	if dst.Numel() == 0 {
		return nil
	}
	p, err := b.ptrs(dst, a, c)
	if err != nil {
		return err
	}
	l, err := layout(dst.Shape(), dst, a, c)
	if err != nil {
		return err
	}
	return b.dev.BinaryStrided(b.s, t, int(op), l, p[0], p[1], p[2])
}

func (b *Backend) Unary(op tensor.UnaryOp, dst, a *tensor.Tensor, arg float64) error {
	defer keep(dst, a)
	t, err := sameFloat("Unary", dst, a)
	if err != nil {
		return err
	}
	if err := tensor.CheckUnary(dst, a); err != nil {
		return cudaErr(err)
	}
	if op > tensor.OpSin {
		return fmt.Errorf("cuda: %w: unary op %d", tensor.ErrUnsupported, op)
	}
	// The CPU rounds the constant of scale and add to the compute type
	// first (float32(arg)·x); doing the same keeps results bit-identical.
	if (op == tensor.OpScale || op == tensor.OpAddC) && t != cuda.F64 {
		arg = float64(float32(arg))
	}
	if dst.Numel() == 0 {
		return nil
	}
	p, err := b.ptrs(dst, a)
	if err != nil {
		return err
	}
	l, err := layout(dst.Shape(), dst, a)
	if err != nil {
		return err
	}
	return b.dev.UnaryStrided(b.s, t, int(op), arg, l, p[0], p[1])
}

func (b *Backend) Reduce(op tensor.ReduceOp, dst, a *tensor.Tensor, axis int) error {
	defer keep(dst, a)
	t, err := sameFloat("Reduce", dst, a)
	if err != nil {
		return err
	}
	if axis, err = tensor.CheckReduce(dst, a, axis); err != nil {
		return cudaErr(err)
	}
	if op > tensor.OpMaxR {
		return fmt.Errorf("cuda: %w: reduce op %d", tensor.ErrUnsupported, op)
	}
	if dst.Numel() == 0 {
		return nil
	}
	p, err := b.ptrs(dst, a)
	if err != nil {
		return err
	}
	// Walk dst's elements; a's stride on the reduced axis is dropped with
	// the size-1 axis and passed separately.
	l, err := layout(dst.Shape(), dst, a)
	if err != nil {
		return err
	}
	return b.dev.ReduceStrided(b.s, t, int(op), l, p[0], p[1], a.Shape()[axis], int64(a.Strides()[axis]))
}

func (b *Backend) Softmax(dst, a *tensor.Tensor, log bool) error {
	defer keep(dst, a)
	t, err := sameFloat("Softmax", dst, a)
	if err != nil {
		return err
	}
	if err := tensor.CheckSoftmax(dst, a); err != nil {
		return cudaErr(err)
	}
	if a.Numel() == 0 {
		return nil
	}
	n := 1
	if a.Rank() > 0 {
		n = a.Dim(-1)
	}
	p, err := b.ptrs(dst, a)
	if err != nil {
		return err
	}
	return b.dev.Softmax(b.s, t, p[0], p[1], a.Numel()/n, n, log)
}
