package tensor

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// Tanh soft-capping, y = c·tanh(x/c): Gemma 2 bounds its attention scores
// (AttentionParams.Softcap, inside the attention kernels) and its final
// logits (this file's op) to (−c, c) this way. Its derivative is
// 1 − tanh²(x/c) = 1 − (y/c)², so the backward needs only the output.
// Float32 runs kernels/asm's Softcap and SoftcapBackward (vectorised,
// shared with the attention kernels); float64 is the plain formula.

// SoftcapBackend is implemented by backends that soft-cap a tensor (the
// final logits of Gemma 2). It is optional, like GeGLUBackend: a backend
// without it (the CUDA one today) makes Softcap fail with a clear error,
// and package nn refuses a soft-capped model on such a backend at load.
type SoftcapBackend interface {
	// Softcap: dst = c·tanh(x/c), same sizes, contiguous; dst may be x.
	Softcap(dst, x *Tensor, c float64) error
	// SoftcapBackward: dx = dy·(1 − (y/c)²) with y the forward's output;
	// dx may be dy.
	SoftcapBackward(dx, dy, y *Tensor, c float64) error
}

// SupportsSoftcap reports whether b computes Softcap.
func SupportsSoftcap(b Backend) bool {
	_, ok := b.(SoftcapBackend)
	return ok
}

func softcapBackend(t *Tensor) SoftcapBackend {
	sb, ok := t.b.(SoftcapBackend)
	if !ok {
		check(fmt.Errorf("tanh soft-capping (Gemma 2's final_logit_softcapping) is not implemented on the %T backend", t.b))
	}
	return sb
}

// Softcap returns c·tanh(x/c) (c > 0).
func Softcap(x *Tensor, c float64) *Tensor {
	x = x.Contiguous()
	out := New(x.b, x.dtype, x.shape...)
	check(softcapBackend(x).Softcap(out, x, c))
	return out
}

// SoftcapInPlace replaces the contiguous x by c·tanh(x/c).
func SoftcapInPlace(x *Tensor, c float64) { check(softcapBackend(x).Softcap(x, x, c)) }

// SoftcapBackwardInPlace multiplies the contiguous gradient dy by
// 1 − (y/c)², y being Softcap's output.
func SoftcapBackwardInPlace(dy, y *Tensor, c float64) {
	check(softcapBackend(dy).SoftcapBackward(dy, dy, y, c))
}

func checkSoftcap(op string, c float64, ts ...*Tensor) error {
	if err := CheckSoftcap(op, c, ts...); err != nil {
		return cpuErr(err)
	}
	return nil
}

// CheckSoftcap checks Softcap's (dst, x) or SoftcapBackward's (dx, dy, y)
// operands and cap for every backend: a finite cap > 0, equal shapes,
// contiguous operands.
func CheckSoftcap(op string, c float64, ts ...*Tensor) error {
	if !(c > 0) || math.IsInf(c, 1) {
		return fmt.Errorf("%s: cap %g, want a finite value > 0", op, c)
	}
	for _, t := range ts[1:] {
		if !t.shape.Equal(ts[0].shape) {
			return fmt.Errorf("%s: shapes %v and %v differ", op, ts[0].shape, t.shape)
		}
	}
	for _, t := range ts {
		if !t.IsContiguous() {
			return fmt.Errorf("%s: operands must be contiguous", op)
		}
	}
	return nil
}

func (c *CPUBackend) Softcap(dst, x *Tensor, limit float64) error {
	if err := checkSoftcap("Softcap", limit, dst, x); err != nil {
		return err
	}
	dt, err := sameFloat(dst, x)
	if err != nil {
		return err
	}
	if dt == F32 {
		d, s := window[float32](dst), window[float32](x)
		parallelRange(len(d), 8, func(_, lo, hi int) { asm.Softcap(d[lo:hi], s[lo:hi], float32(limit)) })
		return nil
	}
	d, s := window[float64](dst), window[float64](x)
	for i, v := range s {
		d[i] = softcap(v, limit)
	}
	return nil
}

func (c *CPUBackend) SoftcapBackward(dx, dy, y *Tensor, limit float64) error {
	if err := checkSoftcap("SoftcapBackward", limit, dx, dy, y); err != nil {
		return err
	}
	dt, err := sameFloat(dx, dy, y)
	if err != nil {
		return err
	}
	if dt == F32 {
		d, g, o := window[float32](dx), window[float32](dy), window[float32](y)
		parallelRange(len(d), 4, func(_, lo, hi int) { asm.SoftcapBackward(d[lo:hi], g[lo:hi], o[lo:hi], float32(limit)) })
		return nil
	}
	d, g, o := window[float64](dx), window[float64](dy), window[float64](y)
	for i := range d {
		d[i] = g[i] * softcapSlope(o[i], limit)
	}
	return nil
}

// softcap is c·tanh(x/c) in float64, x itself when c is 0 (no cap).
func softcap(x, c float64) float64 {
	if c == 0 {
		return x
	}
	return c * math.Tanh(x/c)
}

// softcapSlope is d softcap/dx = 1 − (y/c)² at the capped value y; 1 when
// c is 0.
func softcapSlope(y, c float64) float64 {
	if c == 0 {
		return 1
	}
	t := y / c
	return 1 - t*t
}
