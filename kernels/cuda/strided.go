package cuda

import (
	"math"
)

// Launchers for strided.cu and softmax.cu: elementwise work over strided,
// broadcast views, described by a Layout. The tensor backend builds one
// Layout per call from its views' shapes and strides.

// MaxRank is the most axes a strided kernel takes after merging.
const MaxRank = 6

// Layout is the iteration space of a strided kernel: sizes and, for each of
// up to three operands (output first), one stride per axis in elements
// (0 on broadcast axes). Build it with NewLayout, which merges axes.
type Layout struct {
	Rank    int
	Size    [MaxRank]int64
	Strides [3][MaxRank]int64
	ops     int
}

// Numel is the number of elements the layout covers.
func (l *Layout) Numel() int64 {
	n := int64(1)
	for i := MaxRank - l.Rank; i < MaxRank; i++ {
		n *= l.Size[i]
	}
	return n
}

// NewLayout describes shape walked by 1 to 3 operands with the given
// strides. Size-1 axes are dropped and neighbouring axes that are
// contiguous in every operand are merged, so a dense tensor becomes rank 1;
// more than MaxRank axes left is an ErrBadArgument. The axes are stored
// right-aligned (the kernels peel coordinates from the innermost axis).
func NewLayout(shape []int, strides ...[]int) (Layout, error) {
	var l Layout
	if len(strides) == 0 || len(strides) > 3 {
		return l, badArg("NewLayout: %d operands (1 to 3)", len(strides))
	}
	for _, s := range strides {
		if len(s) != len(shape) {
			return l, badArg("NewLayout: %d strides for shape %v", len(s), shape)
		}
	}
	l.ops = len(strides)
	type axis struct {
		n  int64
		st [3]int64
	}
	var axes []axis
	for i, n := range shape {
		if n < 0 {
			return l, badArg("NewLayout: shape %v", shape)
		}
		if n == 1 {
			continue
		}
		var a axis
		a.n = int64(n)
		for k, s := range strides {
			a.st[k] = int64(s[i])
		}
		if len(axes) > 0 {
			prev := &axes[len(axes)-1]
			merge := true
			for k := range strides {
				if prev.st[k] != a.st[k]*a.n {
					merge = false
				}
			}
			if merge {
				prev.n *= a.n
				prev.st = a.st
				continue
			}
		}
		axes = append(axes, a)
	}
	if len(axes) > MaxRank {
		return l, badArg("NewLayout: shape %v needs %d axes after merging (at most %d)", shape, len(axes), MaxRank)
	}
	for i := range l.Size {
		l.Size[i] = 1
	}
	l.Rank = len(axes)
	for i, a := range axes {
		j := MaxRank - len(axes) + i
		l.Size[j] = a.n
		for k := range strides {
			l.Strides[k][j] = a.st[k]
		}
	}
	// An empty shape (0 elements) keeps a zero size so Numel is 0.
	for _, n := range shape {
		if n == 0 {
			l.Rank = 1
			l.Size[MaxRank-1] = 0
		}
	}
	return l, nil
}

// args appends total, rank, the sizes and the strides of the first nops
// operands.
func (l *Layout) args(a *Args, nops int) *Args {
	a.I64(l.Numel()).Int(l.Rank)
	for _, n := range l.Size {
		a.I64(n)
	}
	for k := 0; k < nops; k++ {
		for _, s := range l.Strides[k] {
			a.I64(s)
		}
	}
	return a
}

func f64arg(a *Args, v float64) *Args { return a.I64(int64(math.Float64bits(v))) }

func checkStorage(op string, t DType) error {
	if t < F32 || t > I64 {
		return badArg("%s: dtype %v", op, t)
	}
	return nil
}

func checkFloat(op string, t DType) error {
	if t != F32 && t != BF16 && t != F64 {
		return badArg("%s: dtype %v (f32, bf16 or f64)", op, t)
	}
	return nil
}

// ConvertStrided sets dst = src element by element over l (operand 0 dst,
// operand 1 src), converting from srcT to dstT: floats to ints truncate
// toward zero, f64 to bf16 rounds through float32 (Go's conversions).
func (d *Device) ConvertStrided(s Stream, l Layout, dst Ptr, dstT DType, src Ptr, srcT DType) error {
	if err := checkStorage("ConvertStrided", dstT); err != nil {
		return err
	}
	if err := checkStorage("ConvertStrided", srcT); err != nil {
		return err
	}
	if l.ops < 2 {
		return badArg("ConvertStrided: layout of %d operands", l.ops)
	}
	return d.launch1D(s, kernelName("convert_strided", "fwd", dstT), l.Numel(), l.args(new(Args).Ptr(dst).Ptr(src).Int(int(srcT)), 2))
}

// FillStrided sets every element of dst (operand 0 of l) to v, converted to t.
func (d *Device) FillStrided(s Stream, l Layout, dst Ptr, t DType, v float64) error {
	if err := checkStorage("FillStrided", t); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("fill_strided", "fwd", t), l.Numel(), l.args(f64arg(new(Args).Ptr(dst), v), 1))
}

// BinaryStrided sets dst = a op b over l (operands dst, a, b); op numbers
// tensor.BinaryOp: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 eq.
func (d *Device) BinaryStrided(s Stream, t DType, op int, l Layout, dst, a, b Ptr) error {
	if err := checkFloat("BinaryStrided", t); err != nil {
		return err
	}
	if op < 0 || op > 5 || l.ops < 3 {
		return badArg("BinaryStrided: op %d with %d operands", op, l.ops)
	}
	return d.launch1D(s, kernelName("binary_bcast", "fwd", t), l.Numel(), l.args(new(Args).Int(op).Ptr(dst).Ptr(a).Ptr(b), 3))
}

// UnaryStrided sets dst = f(a; arg) over l (operands dst, a); op numbers
// tensor.UnaryOp (0 neg ... 15 sin).
func (d *Device) UnaryStrided(s Stream, t DType, op int, arg float64, l Layout, dst, a Ptr) error {
	if err := checkFloat("UnaryStrided", t); err != nil {
		return err
	}
	if op < 0 || op > 15 || l.ops < 2 {
		return badArg("UnaryStrided: op %d with %d operands", op, l.ops)
	}
	return d.launch1D(s, kernelName("unary_strided", "fwd", t), l.Numel(), l.args(f64arg(new(Args).Int(op), arg).Ptr(dst).Ptr(a), 2))
}

// ReduceStrided reduces a along one axis of m elements (a's stride on it:
// axisStride) into dst; l walks dst's elements (operand 0 dst, operand 1 a
// at the start of each reduced run). op: 0 sum, 1 mean, 2 max.
func (d *Device) ReduceStrided(s Stream, t DType, op int, l Layout, dst, a Ptr, m int, axisStride int64) error {
	if err := checkFloat("ReduceStrided", t); err != nil {
		return err
	}
	if op < 0 || op > 2 || l.ops < 2 || m < 0 {
		return badArg("ReduceStrided: op %d, %d operands, m=%d", op, l.ops, m)
	}
	a0 := new(Args).Int(op).Ptr(dst).Ptr(a).I64(l.Numel()).Int(m).I64(axisStride).Int(l.Rank)
	for _, n := range l.Size {
		a0.I64(n)
	}
	for k := 0; k < 2; k++ {
		for _, st := range l.Strides[k] {
			a0.I64(st)
		}
	}
	return d.launch1D(s, kernelName("reduce_strided", "fwd", t), l.Numel(), a0)
}

// Softmax sets y to the softmax (or log-softmax) of each row of the dense
// x [R, C].
func (d *Device) Softmax(s Stream, t DType, y, x Ptr, R, C int, log bool) error {
	if err := checkFloat("Softmax", t); err != nil {
		return err
	}
	if R < 0 || C < 0 || R > 1<<31-1 {
		return badArg("Softmax: R=%d C=%d", R, C)
	}
	if R == 0 || C == 0 {
		return nil
	}
	f, err := d.Kernel(kernelName("softmax", "fwd", t))
	if err != nil {
		return err
	}
	lg := 0
	if log {
		lg = 1
	}
	return f.Launch(s, Dim3{R, 1, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(y).Ptr(x).Int(C).Int(lg))
}

// IndexI32 converts n ids (I32 or I64) to int32 in out. An id equal to
// ignore (when hasIgnore) becomes ignoreTo; any other id outside [0, V)
// also becomes ignoreTo and puts the smallest such position into *bad
// (int32 device scalar the caller sets to math.MaxInt32 first).
func (d *Device) IndexI32(s Stream, out, ids Ptr, idT DType, n int64, V int64, ignore int64, hasIgnore bool, ignoreTo int, bad Ptr) error {
	if idT != I32 && idT != I64 {
		return badArg("IndexI32: ids of dtype %v", idT)
	}
	h := 0
	if hasIgnore {
		h = 1
	}
	return d.launch1D(s, kernelName("index_i32", "fwd", idT), n, new(Args).Ptr(out).Ptr(ids).I64(n).I64(V).I64(ignore).Int(h).Int(ignoreTo).Ptr(bad))
}
