package tensor

import (
	"errors"
	"fmt"

	"github.com/ftune/ftune/kernels/dropout"
)

// DropoutBackend is implemented by backends that draw dropout masks where
// the tensors live (kernels/dropout's counter-based stream), so a GPU
// never receives a mask from the host.
type DropoutBackend interface {
	// Dropout fills dst (F32, contiguous) with x·mask (x F32, contiguous,
	// dst's shape; dst may be x), or with the mask itself when x is nil,
	// for the mask drawn at position pos of the stream key: element i is
	// keep where lane i%4 of draw pos+i/4 is at least drop, else 0
	// (dropout.Apply, dropout.Mask).
	Dropout(dst, x *Tensor, key, pos uint64, drop uint32, keep float32) error
}

// DropoutMask returns the float32 dropout mask of the given shape for
// probability p, drawn at position pos of the stream key (dropout.Mask):
// each element 1/(1−p) or 0. The stream then continues at
// pos + dropout.Draws(numel). Every backend gives the same bits (Dropout's
// products too, NaN payloads aside: a GPU writes its canonical NaN); one
// without DropoutBackend gets the CPU's result copied to it.
func DropoutMask(b Backend, key, pos uint64, p float64, shape ...int) *Tensor {
	return dropoutOp(b, nil, key, pos, p, shape)
}

// Dropout returns x times the mask DropoutMask would draw at pos: for
// float32 x in one pass, the mask never stored; for bf16 x (bf16
// activations) the float32 product rounded once to bf16, in one pass where
// the backend has it (the CUDA backend's dropout_apply_fwd_bf16), else
// through float32; for other dtypes as x·mask with the mask converted to
// x's dtype.
func Dropout(x *Tensor, key, pos uint64, p float64) *Tensor {
	switch x.dtype {
	case F32:
		return dropoutOp(x.b, x.Contiguous(), key, pos, p, x.shape)
	case BF16:
		if db, ok := x.b.(DropoutBackend); ok && p >= 0 && p < 1 {
			drop, keep := dropout.Threshold(p)
			out := New(x.b, BF16, x.shape...)
			err := db.Dropout(out, x.Contiguous(), key, pos, drop, keep)
			if err == nil {
				return out
			}
			if !errors.Is(err, ErrUnsupported) {
				check(err)
			}
		}
		return Dropout(x.To(F32), key, pos, p).To(BF16)
	}
	return Mul(x, DropoutMask(x.b, key, pos, p, x.shape...).To(x.dtype))
}

func dropoutOp(b Backend, x *Tensor, key, pos uint64, p float64, shape Shape) *Tensor {
	if p < 0 || p >= 1 {
		fail("Dropout: p %v outside [0, 1)", p)
	}
	drop, keep := dropout.Threshold(p)
	if db, ok := b.(DropoutBackend); ok {
		out := New(b, F32, shape...)
		check(db.Dropout(out, x, key, pos, drop, keep))
		return out
	}
	var hx *Tensor
	if x != nil {
		hx = FromHost(cpuDefault, F32, x.F32(), shape...)
	}
	host := New(cpuDefault, F32, shape...)
	check(cpuDefault.Dropout(host, hx, key, pos, drop, keep))
	return FromHost(b, F32, window[float32](host), shape...)
}

// Dropout draws in parts of whole draws, in parallel.
func (c *CPUBackend) Dropout(dst, x *Tensor, key, pos uint64, drop uint32, keep float32) error {
	if dst.dtype != F32 {
		return cpuErr(fmt.Errorf("Dropout: %w: dst %v %v (contiguous F32 expected)", ErrUnsupported, dst.dtype, dst.shape))
	}
	if !dst.IsContiguous() {
		return cpuErr(fmt.Errorf("Dropout: dst %v %v (contiguous F32 expected)", dst.dtype, dst.shape))
	}
	var xs []float32
	if x != nil {
		if x.dtype != F32 || !x.IsContiguous() || x.Numel() != dst.Numel() {
			return cpuErr(fmt.Errorf("Dropout: x %v %v for dst %v (contiguous F32 of dst's size expected)", x.dtype, x.shape, dst.shape))
		}
		xs = window[float32](x)
	}
	d := window[float32](dst)
	groups := int(dropout.Draws(len(d)))
	parallelRange(groups, 16, func(_, lo, hi int) {
		part := d[4*lo : min(len(d), 4*hi)]
		if xs == nil {
			dropout.Mask(part, key, pos+uint64(lo), drop, keep)
		} else {
			dropout.Apply(part, xs[4*lo:min(len(d), 4*hi)], key, pos+uint64(lo), drop, keep)
		}
	})
	return nil
}
