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
		parallelRange(len(d), 8, func(_, lo, hi int) {
			buf := attnScratch(min(hi-lo, 4096))
			defer attnPool.Put(buf)
			softcapF32(d[lo:hi], s[lo:hi], *buf, float32(limit))
		})
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
		parallelRange(len(d), 4, func(_, lo, hi int) { softcapGradF32(d[lo:hi], g[lo:hi], o[lo:hi], float32(limit)) })
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

// softcapF32 writes c·tanh(x/c) to dst (which may be x). For |x/c| ≥ 0.3 it
// uses kernels/asm's vectorised exp: tanh(u) = 1 − 2/(1 + e^{2u}), so
// c·tanh(x/c) = c − 2c/(1 + e^{2x/c}); e^{2x/c} overflowing to +Inf gives c
// and underflowing to 0 gives −c, never NaN (−Inf becomes −c: the
// attention caps before it masks). Below 0.3 that formula cancels (its
// absolute error is a few ulps of c, far more than x's own rounding when
// c ≫ x), so there tanh's odd Taylor series to u¹¹ is used (the next term
// is below 2e-9 relative). scratch (not empty) holds the exponentials of
// one chunk: the caller's, since a local array would move to the heap
// (assembly arguments escape) and cost an allocation per call, per score
// row in the attention.
func softcapF32(dst, x, scratch []float32, c float32) {
	chunk := len(scratch)
	k, inv := 2/c, 1/c
	dst = dst[:len(x)]
	for o := 0; o < len(x); o += chunk {
		n := min(chunk, len(x)-o)
		e, xc, dc := scratch[:n], x[o:o+n], dst[o:o+n]
		xc, dc = xc[:len(e)], dc[:len(e)]
		for i, v := range xc {
			e[i] = v * k
		}
		asm.Exp(e, e)
		for i, v := range xc { // dc[i] is written after xc[i] is read: dst may be x
			u := v * inv
			if u > -0.3 && u < 0.3 {
				u2 := u * u
				dc[i] = v * (1 + u2*(-1.0/3+u2*(2.0/15+u2*(-17.0/315+u2*(62.0/2835+u2*(-1382.0/155925))))))
				continue
			}
			dc[i] = c - 2*c/(1+e[i])
		}
	}
}

// softcapGradF32 writes dy·(1 − (y/c)²) to dx (which may be dy), y being
// capped values; a masked score (y = −Inf, below −c) gets 0.
func softcapGradF32(dx, dy, y []float32, c float32) {
	inv := 1 / c
	dx, dy = dx[:len(y)], dy[:len(y)]
	for i, v := range y {
		if v < -c {
			dx[i] = 0
			continue
		}
		t := v * inv
		dx[i] = dy[i] * (1 - t*t)
	}
}
