package backendtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// The optional ops of Gemma 2 and 3 (tensor.GeGLUBackend,
// tensor.SoftcapBackend): a backend that implements them is held to the
// float64 CPU reference like the other fused ops; one that does not skips
// these subtests (package nn refuses Gemma models on it at load). The
// attention-score cap is in attentionAt (capped cases run when the backend
// claims soft-capping).

func (s *suite) geglu(t *testing.T) {
	gb, ok := s.b.(tensor.GeGLUBackend)
	if !ok {
		t.Skipf("%s does not implement tensor.GeGLUBackend", s.b.Name())
	}
	for _, n := range sizes {
		g64, g := s.rand(2, n)
		u64, u := s.rand(2, n)
		out := s.poisoned(tensor.F32, 2, n)
		must(t, gb.GeGLU(out, g, u))
		s.compare(fmt.Sprintf("geglu n=%d", n), out, tensor.GeGLU(g64, u64), s.tol.Fused)
		dy64, dy := s.rand(2, n)
		dg, du := s.poisoned(tensor.F32, 2, n), s.poisoned(tensor.F32, 2, n)
		must(t, gb.GeGLUBackward(dg, du, dy, g, u))
		wg, wu := tensor.New(ref, tensor.F64, 2, n), tensor.New(ref, tensor.F64, 2, n)
		must(t, ref.GeGLUBackward(wg, wu, dy64, g64, u64))
		s.compare(fmt.Sprintf("geglu dgate n=%d", n), dg, wg, s.tol.Fused)
		s.compare(fmt.Sprintf("geglu dup n=%d", n), du, wu, s.tol.Fused)
		// Only dgate asked for (a frozen up projection): dup nil.
		dg2 := s.poisoned(tensor.F32, 2, n)
		must(t, gb.GeGLUBackward(dg2, nil, dy, g, u))
		s.compare(fmt.Sprintf("geglu dgate only n=%d", n), dg2, wg, s.tol.Fused)
	}
}

func (s *suite) softcap(t *testing.T) {
	sb, ok := s.b.(tensor.SoftcapBackend)
	if !ok {
		t.Skipf("%s does not implement tensor.SoftcapBackend", s.b.Name())
	}
	// Cap 1.5 bends most of the N(0,1) inputs, 30 (Gemma 2's logit cap)
	// hardly any.
	for _, c := range []float64{1.5, 30} {
		for _, n := range sizes {
			x64, x := s.rand(3, n)
			out := s.poisoned(tensor.F32, 3, n)
			must(t, sb.Softcap(out, x, c))
			want := tensor.New(ref, tensor.F64, 3, n)
			must(t, ref.Softcap(want, x64, c))
			s.compare(fmt.Sprintf("softcap c=%g n=%d", c, n), out, want, s.tol.Fused)
			// The backward at the backend's own y, read back exactly.
			y64 := tensor.FromHost(ref, tensor.F64, out.F64(), 3, n)
			dy64, dy := s.rand(3, n)
			dx := s.poisoned(tensor.F32, 3, n)
			must(t, sb.SoftcapBackward(dx, dy, out, c))
			wdx := tensor.New(ref, tensor.F64, 3, n)
			must(t, ref.SoftcapBackward(wdx, dy64, y64, c))
			s.compare(fmt.Sprintf("softcap backward c=%g n=%d", c, n), dx, wdx, s.tol.Fused)
			// In place, as the logits are capped: y = x, then dx = dy.
			must(t, sb.Softcap(x, x, c))
			s.compare(fmt.Sprintf("softcap in place c=%g n=%d", c, n), x, want, s.tol.Fused)
			must(t, sb.SoftcapBackward(dy, dy, out, c))
			s.compare(fmt.Sprintf("softcap backward in place c=%g n=%d", c, n), dy, wdx, s.tol.Fused)
		}
	}
}

// errNoGemmaOp stands for a call to an optional op the backend lacks.
var errNoGemmaOp = errors.New("optional op not implemented")

func gegluOf(b tensor.Backend) (tensor.GeGLUBackend, error) {
	gb, ok := b.(tensor.GeGLUBackend)
	if !ok {
		return nil, errNoGemmaOp
	}
	return gb, nil
}

func softcapOf(b tensor.Backend) (tensor.SoftcapBackend, error) {
	sb, ok := b.(tensor.SoftcapBackend)
	if !ok {
		return nil, errNoGemmaOp
	}
	return sb, nil
}

// gemmaShapeCases break the optional ops' rules; the error text is the
// CPU's (shared Check functions).
var gemmaShapeCases = []shapeCase{
	{"geglu", "GeGLU: SwiGLU gate [2,3] up [2,2] -> [2,3]", func(b tensor.Backend) error {
		gb, err := gegluOf(b)
		if err != nil {
			return err
		}
		return gb.GeGLU(f32(b, 2, 3), f32(b, 2, 3), f32(b, 2, 2))
	}},
	{"geglu backward", "GeGLUBackward: SwiGLUBackward dy [2,3] gate [2,3] up [2,3]", func(b tensor.Backend) error {
		gb, err := gegluOf(b)
		if err != nil {
			return err
		}
		return gb.GeGLUBackward(f32(b, 2, 2), nil, f32(b, 2, 3), f32(b, 2, 3), f32(b, 2, 3))
	}},
	{"softcap cap", "Softcap: cap 0, want a finite value > 0", func(b tensor.Backend) error {
		sb, err := softcapOf(b)
		if err != nil {
			return err
		}
		return sb.Softcap(f32(b, 2, 3), f32(b, 2, 3), 0)
	}},
	{"softcap shapes", "Softcap: shapes [2,3] and [3,2] differ", func(b tensor.Backend) error {
		sb, err := softcapOf(b)
		if err != nil {
			return err
		}
		return sb.Softcap(f32(b, 2, 3), f32(b, 3, 2), 30)
	}},
	{"softcap backward strided", "SoftcapBackward: operands must be contiguous", func(b tensor.Backend) error {
		sb, err := softcapOf(b)
		if err != nil {
			return err
		}
		return sb.SoftcapBackward(f32(b, 2, 3), f32(b, 3, 2).Transpose(0, 1), f32(b, 2, 3), 30)
	}},
}

func (s *suite) gemmaShapes(t *testing.T) {
	if !tensor.SupportsGeGLU(s.b) || !tensor.SupportsSoftcap(s.b) {
		t.Skipf("%s lacks GeGLU or soft-capping", s.b.Name())
	}
	s.checkShapeCases(t, gemmaShapeCases)
}
