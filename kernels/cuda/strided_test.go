package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// Go references for strided.cu and softmax.cu, over views with permuted,
// sliced and broadcast (stride 0) axes.

// view is a strided view: shape, strides and offset into a buffer.
type view struct {
	shape   []int
	strides []int
	off     int
}

func dense(shape ...int) view {
	st := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= shape[i]
	}
	return view{shape: shape, strides: st}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// at returns the buffer offset of the i-th element (row-major order).
func (v view) at(i int) int {
	o := v.off
	for k := len(v.shape) - 1; k >= 0; k-- {
		o += (i % v.shape[k]) * v.strides[k]
		i /= v.shape[k]
	}
	return o
}

func TestNewLayoutMerges(t *testing.T) {
	l, err := NewLayout([]int{2, 3, 4}, []int{12, 4, 1}, []int{0, 4, 1})
	if err != nil {
		t.Fatal(err)
	}
	// Axes 1 and 2 merge in both operands; axis 0 is broadcast in the second.
	if l.Rank != 2 || l.Size[4] != 2 || l.Size[5] != 12 || l.Strides[1][4] != 0 || l.Strides[0][4] != 12 {
		t.Fatalf("layout %+v", l)
	}
	if _, err := NewLayout(make([]int, 8), make([]int, 8)); err != nil {
		t.Fatalf("all-zero shape: %v", err)
	}
	big := []int{2, 2, 2, 2, 2, 2, 2}
	if _, err := NewLayout(big, []int{1000, 300, 90, 20, 7, 3, 1}); err == nil {
		t.Fatal("7 unmergeable axes accepted")
	}
}

func TestStridedElementwise(t *testing.T) {
	g := needGPU(t)
	// a: a permuted [5,3,7] view of a [7,3,5] buffer; b: [1,3,1] broadcast.
	const A = 7 * 3 * 5
	av := g.randn(A, 1, F32)
	bv := g.randn(3, 1, F32)
	shape := []int{5, 3, 7}
	va := view{shape: shape, strides: []int{1, 5, 15}}
	vb := view{shape: shape, strides: []int{0, 1, 0}}
	vd := dense(shape...)
	pa, pb := g.up(av, F32), g.up(bv, F32)
	n := numel(shape)
	for op := 0; op <= 5; op++ {
		out := g.alloc(n * 4)
		l, err := NewLayout(shape, vd.strides, va.strides, vb.strides)
		g.ok(err)
		g.ok(g.d.BinaryStrided(g.s, F32, op, l, out, pa, pb))
		got := g.down(out, n, F32)
		want := make([]float64, n)
		for i := range want {
			x, y := float64(av[va.at(i)]), float64(bv[vb.at(i)])
			switch op {
			case 0:
				want[i] = float64(float32(x + y))
			case 1:
				want[i] = float64(float32(x - y))
			case 2:
				want[i] = float64(float32(x * y))
			case 3:
				want[i] = float64(float32(x / y))
			case 4:
				want[i] = math.Max(x, y)
			case 5:
				if x == y {
					want[i] = 1
				}
			}
		}
		compare(t, fmt.Sprintf("binary_bcast_fwd_f32/op%d", op), got, want, nil, tol{0, 0})
	}
	// Unary ops against float64 math rounded once to float32 (the kernel
	// evaluates in double too): equal but where CUDA's and Go's double libm
	// differ in the last bit across a float32 rounding boundary, one float32
	// ulp (2^-23 ≈ 1.2e-7 relative); 2.4e-7 allows that and nothing more.
	pos := make([]float32, A)
	for i, v := range av {
		pos[i] = float32(math.Abs(float64(v))) + 0.1
	}
	pp := g.up(pos, F32)
	for op := 0; op <= 15; op++ {
		out := g.alloc(n * 4)
		l, err := NewLayout(shape, vd.strides, va.strides)
		g.ok(err)
		g.ok(g.d.UnaryStrided(g.s, F32, op, 1.5, l, out, pp))
		got := g.down(out, n, F32)
		want := make([]float64, n)
		for i := range want {
			x := float64(pos[va.at(i)])
			s := 1 / (1 + math.Exp(-x))
			w := [...]float64{-x, math.Exp(x), math.Log(x), x * s, s * (1 + x*(1-s)), math.Sqrt(x), 1 / x, 1.5 * x, x + 1.5,
				math.Pow(x, 1.5), s, math.Tanh(x), x * x, math.Abs(x), math.Cos(x), math.Sin(x)}[op]
			want[i] = float64(float32(w))
		}
		compare(t, fmt.Sprintf("unary_strided_fwd_f32/op%d", op), got, want, nil, tol{0, 2.4e-7})
	}
}

func TestStridedReduceSoftmax(t *testing.T) {
	g := needGPU(t)
	shape := []int{3, 17, 5}
	v := dense(shape...)
	av := g.randn(numel(shape), 1, F32)
	pa := g.up(av, F32)
	for axis := 0; axis < 3; axis++ {
		for op := 0; op <= 2; op++ {
			ds := append([]int(nil), shape...)
			ds[axis] = 1
			vd := dense(ds...)
			m := numel(ds)
			out := g.alloc(m * 4)
			l, err := NewLayout(ds, vd.strides, v.strides)
			g.ok(err)
			g.ok(g.d.ReduceStrided(g.s, F32, op, l, out, pa, shape[axis], int64(v.strides[axis])))
			got := g.down(out, m, F32)
			want := make([]float64, m)
			av0 := view{shape: ds, strides: v.strides}
			for i := range want {
				base := av0.at(i)
				acc := 0.0
				if op == 2 {
					acc = math.Inf(-1)
				}
				for j := 0; j < shape[axis]; j++ {
					x := float64(av[base+j*v.strides[axis]])
					if op == 2 {
						acc = math.Max(acc, x)
					} else {
						acc += x
					}
				}
				if op == 1 {
					acc /= float64(shape[axis])
				}
				want[i] = float64(float32(acc))
			}
			compare(t, fmt.Sprintf("reduce_strided_fwd_f32/axis%d_op%d", axis, op), got, want, nil, tol{0, 1e-7})
		}
	}
	for _, C := range []int{1, 7, 300, 1025} {
		R := 3
		x := g.randn(R*C, 3, F32)
		px := g.up(x, F32)
		for _, lg := range []bool{false, true} {
			out := g.alloc(R * C * 4)
			g.ok(g.d.Softmax(g.s, F32, out, px, R, C, lg))
			got := g.down(out, R*C, F32)
			want := make([]float64, R*C)
			for r := 0; r < R; r++ {
				mx := math.Inf(-1)
				for j := 0; j < C; j++ {
					mx = math.Max(mx, float64(x[r*C+j]))
				}
				s := 0.0
				for j := 0; j < C; j++ {
					s += math.Exp(float64(x[r*C+j]) - mx)
				}
				for j := 0; j < C; j++ {
					y := float64(x[r*C+j]) - mx - math.Log(s)
					if !lg {
						y = math.Exp(y)
					}
					want[r*C+j] = y
				}
			}
			compare(t, fmt.Sprintf("softmax_fwd_f32/C%d_log%v", C, lg), got, want, nil, tol{1e-7, 1e-6})
		}
	}
}

func TestConvertFillIndex(t *testing.T) {
	g := needGPU(t)
	// f32 [4,6] transposed into dense [6,4] of every dtype, back to f64.
	x := g.randn(24, 50, F32)
	px := g.up(x, F32)
	src := view{shape: []int{6, 4}, strides: []int{1, 6}}
	for _, dt := range []DType{F32, BF16, F64, I32, I64} {
		mid := g.alloc(24 * dt.Size())
		l, err := NewLayout(src.shape, []int{4, 1}, src.strides)
		g.ok(err)
		g.ok(g.d.ConvertStrided(g.s, l, mid, dt, px, F32))
		back := g.alloc(24 * 8)
		l2, err := NewLayout([]int{24}, []int{1}, []int{1})
		g.ok(err)
		g.ok(g.d.ConvertStrided(g.s, l2, back, F64, mid, dt))
		g.sync()
		got64 := make([]float64, 24)
		g.ok(CopyDtoH(g.d, got64, back))
		got := make([]float32, 24)
		want := make([]float64, 24)
		for i := range want {
			v := x[src.at(i)]
			switch dt {
			case BF16:
				v = half.BF16ToF32(half.F32ToBF16(v))
			case I32, I64:
				v = float32(math.Trunc(float64(v)))
			}
			want[i] = float64(v)
			got[i] = float32(got64[i])
		}
		compare(t, "convert_strided_fwd_"+dt.String(), got, want, nil, tol{0, 0})
	}
	// int64 beyond int32 survives an i64 -> i64 strided copy exactly.
	big := []int64{1 << 40, -5, 1<<62 + 3, 7}
	pb := g.alloc(32)
	g.ok(CopyHtoD(g.d, pb, big))
	pc := g.alloc(32)
	l, err := NewLayout([]int{2, 2}, []int{2, 1}, []int{1, 2})
	g.ok(err)
	g.ok(g.d.ConvertStrided(g.s, l, pc, I64, pb, I64))
	g.sync()
	gotI := make([]int64, 4)
	g.ok(CopyDtoH(g.d, gotI, pc))
	if gotI[0] != big[0] || gotI[1] != big[2] || gotI[2] != big[1] || gotI[3] != big[3] {
		t.Errorf("i64 transpose: %v from %v", gotI, big)
	}
	// Fill every other element of a [4,3] bf16 buffer.
	pf := g.alloc(12 * 2)
	lf, err := NewLayout([]int{4, 2}, []int{3, 2})
	g.ok(err)
	g.ok(g.d.FillStrided(g.s, lf, pf, BF16, 2.5))
	gotF := g.down(pf, 12, BF16)
	for i, v := range gotF {
		filled := i%3 == 0 || i%3 == 2
		if filled && v != 2.5 || !filled && !math.IsNaN(float64(v)) {
			t.Fatalf("fill_strided_fwd_bf16: %v", gotF)
		}
	}
	// Ids: 7 is out of [0,5) at position 3; -100 is the ignore value.
	ids := []int64{0, 4, -100, 7, 2, 9}
	pi := g.alloc(48)
	g.ok(CopyHtoD(g.d, pi, ids))
	out := g.alloc(7 * 4)
	bad := out.Add(24)
	g.ok(g.d.Memset32(bad, math.MaxInt32, 1))
	g.ok(g.d.IndexI32(g.s, out, pi, I64, 6, 5, -100, true, IgnoreIndex, bad))
	g.sync()
	res := make([]int32, 7)
	g.ok(CopyDtoH(g.d, res, out))
	if want := []int32{0, 4, -100, -100, 2, -100, 3}; fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("index_i32_fwd_i64: %v, want %v", res, want)
	}
}
