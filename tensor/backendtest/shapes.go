package backendtest

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// shapeCase is one call that breaks the Backend contract's shape rules.
// want is a piece of the error every backend must return (the rules live
// in tensor's Check functions, so the text is the same everywhere).
type shapeCase struct {
	name string
	want string
	call func(b tensor.Backend) error
}

func f32(b tensor.Backend, shape ...int) *tensor.Tensor { return tensor.Zeros(b, tensor.F32, shape...) }

func ids(b tensor.Backend, v ...int64) *tensor.Tensor {
	return tensor.FromHost(b, tensor.I64, v, len(v))
}

var causal = tensor.AttentionParams{Scale: 1, Causal: true}

var shapeCases = []shapeCase{
	{"matmul inner size", "MatMul [2,4]·[5,3] (transA=false transB=false) -> [2,3]", func(b tensor.Backend) error {
		return b.MatMul(f32(b, 2, 3), f32(b, 2, 4), f32(b, 5, 3), false, false, 1, 0)
	}},
	{"matmul rank", "MatMul ranks 1, 2 -> 1", func(b tensor.Backend) error {
		return b.MatMul(f32(b, 3), f32(b, 4), f32(b, 4, 3), false, false, 1, 0)
	}},
	{"matmul batch", "MatMul batch dims [3,2,4] vs [2,2,3]", func(b tensor.Backend) error {
		return b.MatMul(f32(b, 2, 2, 3), f32(b, 3, 2, 4), f32(b, 4, 3), false, false, 1, 0)
	}},
	{"binary", "Binary shapes [2,3] [3,2] -> [2,3]", func(b tensor.Backend) error {
		return b.Binary(tensor.OpAdd, f32(b, 2, 3), f32(b, 2, 3), f32(b, 3, 2))
	}},
	{"unary", "Unary shape [2,3] -> [3,2]", func(b tensor.Backend) error {
		return b.Unary(tensor.OpExp, f32(b, 3, 2), f32(b, 2, 3), 0)
	}},
	{"reduce axis", "Reduce axis 2 out of range for rank 2", func(b tensor.Backend) error {
		return b.Reduce(tensor.OpSum, f32(b, 2, 1), f32(b, 2, 3), 2)
	}},
	{"reduce dst", "Reduce [2,3] over axis 1 into [2,3]", func(b tensor.Backend) error {
		return b.Reduce(tensor.OpSum, f32(b, 2, 3), f32(b, 2, 3), -1)
	}},
	{"softmax", "Softmax needs contiguous equal shapes ([2,3], [3,2])", func(b tensor.Backend) error {
		return b.Softmax(f32(b, 3, 2), f32(b, 2, 3), false)
	}},
	{"rmsnorm strided", "fused op needs contiguous operands", func(b tensor.Backend) error {
		return b.RMSNorm(f32(b, 8, 4), f32(b, 8), f32(b, 4, 8).Transpose(0, 1), nil, 1e-5)
	}},
	{"rmsnorm invRMS", "RMSNorm x [4,8] w [8] dst [4,8] invRMS [3]", func(b tensor.Backend) error {
		return b.RMSNorm(f32(b, 4, 8), f32(b, 3), f32(b, 4, 8), f32(b, 8), 1e-5)
	}},
	{"rmsnorm weight", "RMSNorm x [4,8] w [7] dst [4,8] invRMS [4]", func(b tensor.Backend) error {
		return b.RMSNorm(f32(b, 4, 8), f32(b, 4), f32(b, 4, 8), f32(b, 7), 1e-5)
	}},
	{"rmsnorm backward dw", "RMSNormBackward x [4,8] dy [4,8] dx [4,8] dw [7] invRMS [4]", func(b tensor.Backend) error {
		return b.RMSNormBackward(f32(b, 4, 8), f32(b, 7), f32(b, 4, 8), f32(b, 4, 8), nil, f32(b, 4))
	}},
	{"rope sin", "RoPE x [1,2,2,4] with cos [1,2,2] sin [1,2,3] into [1,2,2,4]", func(b tensor.Backend) error {
		return b.RoPE(f32(b, 1, 2, 2, 4), f32(b, 1, 2, 2, 4), f32(b, 1, 2, 2), f32(b, 1, 2, 3), false)
	}},
	{"rope dst", "RoPE x [1,2,2,4] with cos [1,2,2] sin [1,2,2] into [1,2,1,4]", func(b tensor.Backend) error {
		return b.RoPE(f32(b, 1, 2, 1, 4), f32(b, 1, 2, 2, 4), f32(b, 1, 2, 2), f32(b, 1, 2, 2), false)
	}},
	{"swiglu", "SwiGLU gate [2,3] up [2,2] -> [2,3]", func(b tensor.Backend) error {
		return b.SwiGLU(f32(b, 2, 3), f32(b, 2, 3), f32(b, 2, 2))
	}},
	{"swiglu backward", "SwiGLUBackward dy [2,3] gate [2,3] up [2,3]", func(b tensor.Backend) error {
		return b.SwiGLUBackward(f32(b, 2, 2), nil, f32(b, 2, 3), f32(b, 2, 3), f32(b, 2, 3))
	}},
	{"embedding table", "Embedding table [5] (want [V,D])", func(b tensor.Backend) error {
		return b.Embedding(f32(b, 3, 1), f32(b, 5), ids(b, 0, 1, 2))
	}},
	{"embedding dst", "Embedding of 3 ids into [2,4]", func(b tensor.Backend) error {
		return b.Embedding(f32(b, 2, 4), f32(b, 5, 4), ids(b, 0, 1, 2))
	}},
	{"embedding ids dtype", "Embedding: ids of dtype F32 (I32 or I64 expected)", func(b tensor.Backend) error {
		return b.Embedding(f32(b, 3, 4), f32(b, 5, 4), f32(b, 3))
	}},
	{"embedding backward", "EmbeddingBackward dy [2,4] for 3 ids of width 4", func(b tensor.Backend) error {
		return b.EmbeddingBackward(f32(b, 5, 4), f32(b, 2, 4), ids(b, 0, 1, 2))
	}},
	{"cross entropy dlogits", "CrossEntropy logits [3,5] labels [3] loss [3]", func(b tensor.Backend) error {
		return b.CrossEntropy(f32(b, 3), f32(b, 2, 5), f32(b, 3, 5), ids(b, 0, 1, 2), -100, 1)
	}},
	{"cross entropy labels", "CrossEntropy logits [3,5] labels [2] loss [3]", func(b tensor.Backend) error {
		return b.CrossEntropy(f32(b, 3), nil, f32(b, 3, 5), ids(b, 0, 1), -100, 1)
	}},
	{"attention heads", "(query heads must be a multiple of KV heads)", func(b tensor.Backend) error {
		return b.Attention(f32(b, 1, 2, 3, 8), f32(b, 1, 3, 2), f32(b, 1, 2, 3, 8), f32(b, 1, 2, 2, 8), f32(b, 1, 2, 2, 8), causal)
	}},
	{"attention out", "attention out [1,2,1,8] lse [1,2,2] for q [1,2,2,8]", func(b tensor.Backend) error {
		return b.Attention(f32(b, 1, 2, 1, 8), f32(b, 1, 2, 2), f32(b, 1, 2, 2, 8), f32(b, 1, 2, 1, 8), f32(b, 1, 2, 1, 8), causal)
	}},
	{"attention lse", "attention out [1,2,2,8] lse [1,2,1] for q [1,2,2,8]", func(b tensor.Backend) error {
		return b.Attention(f32(b, 1, 2, 2, 8), f32(b, 1, 2, 1), f32(b, 1, 2, 2, 8), f32(b, 1, 2, 1, 8), f32(b, 1, 2, 1, 8), causal)
	}},
	{"attention key mask", "attention key mask [1,3] for B=1 S=2", func(b tensor.Backend) error {
		p := causal
		p.KeyMask = f32(b, 1, 3)
		return b.Attention(f32(b, 1, 2, 1, 8), f32(b, 1, 1, 2), f32(b, 1, 2, 1, 8), f32(b, 1, 2, 1, 8), f32(b, 1, 2, 1, 8), p)
	}},
	{"attention segments", "attention segments need S >= T (S=2 T=4)", func(b tensor.Backend) error {
		p := causal
		p.Segments = f32(b, 1, 2)
		return b.Attention(f32(b, 1, 4, 1, 8), f32(b, 1, 1, 4), f32(b, 1, 4, 1, 8), f32(b, 1, 2, 1, 8), f32(b, 1, 2, 1, 8), p)
	}},
	{"attention backward", "AttentionBackward dq [1,2,1,8] dk [1,3,1,8] dv [1,2,1,8] dout [1,2,1,8] for q [1,2,1,8] k [1,2,1,8]", func(b tensor.Backend) error {
		q := func() *tensor.Tensor { return f32(b, 1, 2, 1, 8) }
		return b.AttentionBackward(q(), f32(b, 1, 3, 1, 8), q(), q(), q(), f32(b, 1, 1, 2), q(), q(), q(), causal)
	}},
}

// callCatching turns a panic into a test failure's message, so one broken
// case does not hide the others.
func callCatching(b tensor.Backend, c shapeCase) (panicked any, err error) {
	defer func() { panicked = recover() }()
	return nil, c.call(b)
}

// shapes checks that every op refuses operands of the wrong shape with the
// error of tensor's shared checks, the same text as the CPU backend's after
// the backend's name, instead of panicking or writing out of place.
func (s *suite) shapes(t *testing.T) { s.checkShapeCases(t, shapeCases) }

// checkShapeCases runs each case on the backend and on the CPU: both must
// fail with the case's text.
func (s *suite) checkShapeCases(t *testing.T, cases []shapeCase) {
	for _, c := range cases {
		p, err := callCatching(s.b, c)
		switch {
		case p != nil:
			t.Errorf("%s: panicked: %v", c.name, p)
			continue
		case err == nil:
			t.Errorf("%s: no error, want one containing %q", c.name, c.want)
			continue
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: error %q, want it to contain %q", c.name, err, c.want)
		}
		if s.b == tensor.Backend(ref) {
			continue
		}
		_, refErr := callCatching(ref, c)
		if got, want := afterName(err), afterName(refErr); got != want {
			t.Errorf("%s: error %q differs from the CPU backend's %q", c.name, got, want)
		}
	}
}

// afterName drops the backend's "name: " prefix of an error.
func afterName(err error) string {
	if err == nil {
		return "<nil>"
	}
	_, rest, _ := strings.Cut(err.Error(), ": ")
	return rest
}
