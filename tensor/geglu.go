package tensor

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// GeGLUBackend is implemented by backends that compute Gemma's gated MLP
// activation, gelu_tanh(gate)·up. It is an optional interface rather than
// part of Backend: a backend without it (the CUDA one today) makes
// GeGLU fail with a clear error, and package nn refuses a GeGLU model on
// such a backend when it is loaded (SupportsGeGLU), before any work.
type GeGLUBackend interface {
	// GeGLU: dst = gelu_tanh(gate)·up, all of one size.
	GeGLU(dst, gate, up *Tensor) error
	// GeGLUBackward: dgate = dy·up·gelu_tanh'(gate), dup = dy·gelu_tanh(gate).
	GeGLUBackward(dgate, dup, dy, gate, up *Tensor) error
}

// SupportsGeGLU reports whether b computes GeGLU.
func SupportsGeGLU(b Backend) bool {
	_, ok := b.(GeGLUBackend)
	return ok
}

// GeGLU returns gelu_tanh(gate)·up, GELU with PyTorch's tanh
// approximation (transformers' gelu_pytorch_tanh):
// 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))).
func GeGLU(gate, up *Tensor) *Tensor {
	gate, up = gate.Contiguous(), up.Contiguous()
	gb, ok := gate.b.(GeGLUBackend)
	if !ok {
		check(fmt.Errorf("GeGLU (Gemma's gelu_pytorch_tanh MLP) is not implemented on the %T backend", gate.b))
	}
	out := New(gate.b, gate.dtype, gate.shape...)
	check(gb.GeGLU(out, gate, up))
	return out
}

// geluTanhC is √(2/π).
const geluTanhC = 0.7978845608028654

// geluTanh returns gelu_tanh(x) and its derivative.
func geluTanh(x float64) (y, dy float64) {
	inner := geluTanhC * (x + 0.044715*x*x*x)
	t := math.Tanh(inner)
	y = 0.5 * x * (1 + t)
	dInner := geluTanhC * (1 + 3*0.044715*x*x)
	dy = 0.5*(1+t) + 0.5*x*(1-t*t)*dInner
	return y, dy
}

func (c *CPUBackend) GeGLU(dst, gate, up *Tensor) error {
	if err := CheckSwiGLU(dst, gate, up); err != nil {
		return cpuErr(fmt.Errorf("GeGLU: %w", err))
	}
	dt, err := sameFloat(dst, gate, up)
	if err != nil {
		return err
	}
	if dt == F32 {
		d, g, u := window[float32](dst), window[float32](gate), window[float32](up)
		parallelRange(len(d), 8, func(_, lo, hi int) { asm.GeGLU(d[lo:hi], g[lo:hi], u[lo:hi]) })
	} else {
		geglu(window[float64](dst), window[float64](gate), window[float64](up))
	}
	return nil
}

func geglu[T float](d, g, u []T) {
	for i := range d {
		// torch computes the activation in the dtype, then multiplies.
		y, _ := geluTanh(float64(g[i]))
		d[i] = T(y) * u[i]
	}
}

func (c *CPUBackend) GeGLUBackward(dgate, dup, dy, gate, up *Tensor) error {
	if err := CheckSwiGLUBackward(dgate, dup, dy, gate, up); err != nil {
		return cpuErr(fmt.Errorf("GeGLUBackward: %w", err))
	}
	dt, err := sameFloat(dy, dgate, dup, gate, up) // dy first: either gradient may be nil
	if err != nil {
		return err
	}
	if dt == F32 {
		dg, du, y, g, u := window[float32](dgate), window[float32](dup), window[float32](dy), window[float32](gate), window[float32](up)
		parallelRange(len(y), 8, func(_, lo, hi int) {
			gegluBwdF32(part(dg, lo, hi), part(du, lo, hi), y[lo:hi], g[lo:hi], u[lo:hi])
		})
	} else {
		gegluBwd(window[float64](dgate), window[float64](dup), window[float64](dy), window[float64](gate), window[float64](up))
	}
	return nil
}

// gegluBwdF32 runs kernels/asm's GeGLUBackward (vectorised; GeGLURef and
// GeGLUBackwardRef there are the float32 definition, which
// TestGeGLUReference holds to a float64 evaluation of transformers'
// formula). A gradient nobody asked for (nil) is written to a scratch
// chunk and dropped.
func gegluBwdF32(dg, du, dy, g, u []float32) {
	if dg != nil && du != nil {
		asm.GeGLUBackward(dg, du, dy, g, u)
		return
	}
	const chunk = 1024
	scratch := make([]float32, min(chunk, len(dy)))
	for o := 0; o < len(dy); o += chunk {
		n := min(chunk, len(dy)-o)
		dgc, duc := scratch[:n], scratch[:n]
		if dg != nil {
			dgc = dg[o : o+n]
		}
		if du != nil {
			duc = du[o : o+n]
		}
		asm.GeGLUBackward(dgc, duc, dy[o:o+n], g[o:o+n], u[o:o+n])
	}
}

// part is s[lo:hi], or nil for a gradient nobody asked for.
func part[T float](s []T, lo, hi int) []T {
	if s == nil {
		return nil
	}
	return s[lo:hi]
}

func gegluBwd[T float](dg, du, dy, g, u []T) {
	for i := range dy {
		y, d := geluTanh(float64(g[i]))
		if du != nil {
			du[i] = T(float64(dy[i]) * y)
		}
		if dg != nil {
			dg[i] = T(float64(dy[i]) * float64(u[i]) * d)
		}
	}
}
