package tensor

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/ftune/ftune/kernels/asm"
)

type float interface{ ~float32 | ~float64 }

// floats returns the whole backing slice of a float32 or float64 storage.
func floats[T float](t *Tensor) []T {
	s := t.st.(*cpuStorage)
	var z T
	switch any(z).(type) {
	case float32:
		if s.dt == F32 {
			return any(s.f32).([]T)
		}
	case float64:
		if s.dt == F64 {
			return any(s.f64).([]T)
		}
	}
	fail("cpu: %v storage used as %T", s.dt, z)
	return nil
}

func sameFloat(ts ...*Tensor) (DType, error) {
	dt := ts[0].dtype
	for _, t := range ts {
		if t != nil && t.dtype != dt {
			return 0, fmt.Errorf("cpu: mixed dtypes %v and %v", dt, t.dtype)
		}
	}
	if dt != F32 && dt != F64 {
		return 0, fmt.Errorf("cpu: %w: %v compute (F32 or F64 expected)", ErrUnsupported, dt)
	}
	return dt, nil
}

func (c *CPUBackend) Binary(op BinaryOp, dst, a, b *Tensor) error {
	dt, err := sameFloat(dst, a, b)
	if err != nil {
		return err
	}
	if err := CheckBinary(dst, a, b); err != nil {
		return cpuErr(err)
	}
	if dt == F32 && binaryF32Fast(op, dst, a, b) {
		return nil
	}
	if dt == F32 {
		binary[float32](op, dst, a, b)
	} else {
		binary[float64](op, dst, a, b)
	}
	return nil
}

func binary[T float](op BinaryOp, dst, a, b *Tensor) {
	d, x, y := floats[T](dst), floats[T](a), floats[T](b)
	f := binaryFunc[T](op)
	// Walk dst and a together, tracking b's offset with a second walk that
	// follows the same index order.
	bOffs := make([]int, 0, 64)
	walk2(dst.shape, a.strides, a.offset, b.strides, b.offset, func(ia, ib, n, sa, sb int) {
		bOffs = append(bOffs, ib, sb)
	})
	i := 0
	walk2(dst.shape, dst.strides, dst.offset, a.strides, a.offset, func(id, ia, n, sd, sa int) {
		ib, sb := bOffs[i], bOffs[i+1]
		i += 2
		if sd == 1 && sa == 1 && sb == 1 {
			dd, xx, yy := d[id:id+n], x[ia:ia+n], y[ib:ib+n]
			for k := range dd {
				dd[k] = f(xx[k], yy[k])
			}
			return
		}
		for k := 0; k < n; k++ {
			d[id+k*sd] = f(x[ia+k*sa], y[ib+k*sb])
		}
	})
}

func binaryFunc[T float](op BinaryOp) func(x, y T) T {
	switch op {
	case OpAdd:
		return func(x, y T) T { return x + y }
	case OpSub:
		return func(x, y T) T { return x - y }
	case OpMul:
		return func(x, y T) T { return x * y }
	case OpDiv:
		return func(x, y T) T { return x / y }
	case OpMax:
		return func(x, y T) T {
			if x != x || x > y {
				return x
			}
			return y
		}
	case OpEq:
		return func(x, y T) T {
			if x == y {
				return 1
			}
			return 0
		}
	}
	fail("unknown binary op %d", op)
	return nil
}

func (c *CPUBackend) Unary(op UnaryOp, dst, a *Tensor, arg float64) error {
	dt, err := sameFloat(dst, a)
	if err != nil {
		return err
	}
	if err := CheckUnary(dst, a); err != nil {
		return cpuErr(err)
	}
	if dt == F32 {
		unary[float32](op, dst, a, arg)
	} else {
		unary[float64](op, dst, a, arg)
	}
	return nil
}

func unary[T float](op UnaryOp, dst, a *Tensor, arg float64) {
	d, x := floats[T](dst), floats[T](a)
	f := unaryFunc[T](op, arg)
	walk2(dst.shape, dst.strides, dst.offset, a.strides, a.offset, func(id, ia, n, sd, sa int) {
		for k := 0; k < n; k++ {
			d[id+k*sd] = f(x[ia+k*sa])
		}
	})
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func unaryFunc[T float](op UnaryOp, arg float64) func(T) T {
	switch op {
	case OpNeg:
		return func(x T) T { return -x }
	case OpExp:
		return func(x T) T { return T(math.Exp(float64(x))) }
	case OpLog:
		return func(x T) T { return T(math.Log(float64(x))) }
	case OpSilu:
		return func(x T) T { return T(float64(x) * sigmoid(float64(x))) }
	case OpSiluGrad:
		return func(x T) T {
			s := sigmoid(float64(x))
			return T(s * (1 + float64(x)*(1-s)))
		}
	case OpSqrt:
		return func(x T) T { return T(math.Sqrt(float64(x))) }
	case OpRecip:
		return func(x T) T { return 1 / x }
	case OpScale:
		s := T(arg)
		return func(x T) T { return s * x }
	case OpAddC:
		s := T(arg)
		return func(x T) T { return x + s }
	case OpPowC:
		return func(x T) T { return T(math.Pow(float64(x), arg)) }
	case OpSigmoid:
		return func(x T) T { return T(sigmoid(float64(x))) }
	case OpTanh:
		return func(x T) T { return T(math.Tanh(float64(x))) }
	case OpSquare:
		return func(x T) T { return x * x }
	case OpAbs:
		return func(x T) T { return T(math.Abs(float64(x))) }
	case OpCos:
		return func(x T) T { return T(math.Cos(float64(x))) }
	case OpSin:
		return func(x T) T { return T(math.Sin(float64(x))) }
	}
	fail("unknown unary op %d", op)
	return nil
}

func (c *CPUBackend) Reduce(op ReduceOp, dst, a *Tensor, axis int) error {
	dt, err := sameFloat(dst, a)
	if err != nil {
		return err
	}
	if axis, err = CheckReduce(dst, a, axis); err != nil {
		return cpuErr(err)
	}
	if dt == F32 && reduceLeadingF32(op, dst, a, axis) {
		return nil
	}
	if dt == F32 {
		reduce[float32](op, dst, a, axis)
	} else {
		reduce[float64](op, dst, a, axis)
	}
	return nil
}

func reduce[T float](op ReduceOp, dst, a *Tensor, axis int) {
	d, x := floats[T](dst), floats[T](a)
	n := a.shape[axis]
	sa := a.strides[axis]
	// Walk the output; for each output element, run along the axis.
	walk2(dst.shape, dst.strides, dst.offset, a.strides, a.offset, func(id, ia, m, sd, sx int) {
		for k := 0; k < m; k++ {
			base := ia + k*sx
			var acc float64
			if op == OpMaxR {
				acc = math.Inf(-1)
				if n == 0 {
					acc = math.NaN()
				}
			}
			for j := 0; j < n; j++ {
				v := float64(x[base+j*sa])
				switch op {
				case OpMaxR:
					if v > acc || v != v {
						acc = v
					}
				default:
					acc += v
				}
			}
			if op == OpMean {
				acc /= float64(n)
			}
			d[id+k*sd] = T(acc)
		}
	})
}

// reduceLeadingF32 is reduce's sum or mean over an axis that is not the
// last one, for a and dst contiguous (a broadcast input's gradient summed
// over the tokens): it adds whole rows of the inner size into float64
// accumulators, so memory is read in order instead of with a stride of the
// inner size, and each output element is the same float64 sum in the same
// order as reduce's, bit for bit. It reports false for any other case.
func reduceLeadingF32(op ReduceOp, dst, a *Tensor, axis int) bool {
	if (op != OpSum && op != OpMean) || !a.IsContiguous() || !dst.IsContiguous() || axis == a.Rank()-1 {
		return false
	}
	n := a.shape[axis]
	inner := 1
	for _, s := range a.shape[axis+1:] {
		inner *= s
	}
	if n == 0 || inner < 2 {
		return false
	}
	outer := a.Numel() / (n * inner)
	d := floats[float32](dst)[dst.offset : dst.offset+outer*inner]
	x := floats[float32](a)[a.offset : a.offset+a.Numel()]
	for o := 0; o < outer; o++ {
		xo, do := x[o*n*inner:(o+1)*n*inner], d[o*inner:(o+1)*inner]
		parallelRange(inner, n, func(_, lo, hi int) {
			// Columns a block at a time: the accumulators stay in cache
			// and on the stack whatever the inner size.
			var buf [reduceBlock]float64
			for c0 := lo; c0 < hi; c0 += reduceBlock {
				c1 := min(c0+reduceBlock, hi)
				acc := buf[:c1-c0]
				clear(acc)
				for j := 0; j < n; j++ {
					for c, v := range xo[j*inner+c0 : j*inner+c1] {
						acc[c] += float64(v)
					}
				}
				for c, v := range acc {
					if op == OpMean {
						v /= float64(n)
					}
					do[c0+c] = float32(v)
				}
			}
		})
	}
	return true
}

// reduceBlock is how many columns reduceLeadingF32 sums at once.
const reduceBlock = 1024

func (c *CPUBackend) Softmax(dst, a *Tensor, log bool) error {
	dt, err := sameFloat(dst, a)
	if err != nil {
		return err
	}
	if err := CheckSoftmax(dst, a); err != nil {
		return cpuErr(err)
	}
	if dt == F32 {
		softmaxRows[float32](floats[float32](dst)[dst.offset:], floats[float32](a)[a.offset:], a.Numel(), a.Dim(-1), log)
	} else {
		softmaxRows[float64](floats[float64](dst)[dst.offset:], floats[float64](a)[a.offset:], a.Numel(), a.Dim(-1), log)
	}
	return nil
}

// logSumExp is log Σ exp(row) in float64, shifted by the row's maximum so
// that no term overflows: the reference of softmax and cross-entropy.
func logSumExp[T float](row []T) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum)
}

func softmaxRows[T float](d, x []T, numel, n int, log bool) {
	if n == 0 {
		return
	}
	for r := 0; r < numel/n; r++ {
		row, out := x[r*n:(r+1)*n], d[r*n:(r+1)*n]
		lse := logSumExp(row)
		for j, v := range row {
			if log {
				out[j] = T(float64(v) - lse)
			} else {
				out[j] = T(math.Exp(float64(v) - lse))
			}
		}
	}
}

// binaryF32Fast runs add/mul of dense same-layout float32 operands through
// the SIMD kernels (the residual adds and gradient accumulation of every
// layer); it reports false for anything else.
func binaryF32Fast(op BinaryOp, dst, a, b *Tensor) bool {
	if (op != OpAdd && op != OpMul) || !dst.IsContiguous() {
		return false
	}
	if !a.IsContiguous() && b.IsContiguous() {
		a, b = b, a // x+y and x·y are y+x and y·x bit for bit
	}
	if a.IsContiguous() && !b.IsContiguous() {
		return rowBroadcastF32(op, dst, a, b)
	}
	if !a.IsContiguous() || !b.IsContiguous() {
		return false
	}
	n := dst.Numel()
	d := floats[float32](dst)[dst.offset : dst.offset+n]
	x := floats[float32](a)[a.offset : a.offset+n]
	y := floats[float32](b)[b.offset : b.offset+n]
	// The kernels allow dst to be x or y exactly, not a shifted overlap.
	if overlapsShifted(d, x) || overlapsShifted(d, y) {
		return false
	}
	parallelRange(n, 1, func(_, lo, hi int) {
		if op == OpAdd {
			asm.Add(d[lo:hi], x[lo:hi], y[lo:hi])
		} else {
			asm.Mul(d[lo:hi], x[lo:hi], y[lo:hi])
		}
	})
	return true
}

// rowBroadcastF32 is binaryF32Fast for b a vector of the last axis
// broadcast over every row (a bias, DoRA's magnitude factor: stride 1 on
// the last axis, 0 on the others), dst and a contiguous: each row through
// the vector kernel instead of binary's strided walk, the same products
// and sums. It reports false for any other layout.
func rowBroadcastF32(op BinaryOp, dst, a, b *Tensor) bool {
	r := b.Rank()
	if r == 0 || b.strides[r-1] != 1 {
		return false
	}
	for _, s := range b.strides[:r-1] {
		if s != 0 {
			return false
		}
	}
	n, cols := dst.Numel(), dst.shape[r-1]
	if cols == 0 || n == 0 {
		return false
	}
	d := floats[float32](dst)[dst.offset : dst.offset+n]
	x := floats[float32](a)[a.offset : a.offset+n]
	y := floats[float32](b)[b.offset : b.offset+cols]
	if overlapsShifted(d, x) || overlapsShifted(d, y) || &d[0] == &y[0] {
		return false
	}
	parallelRange(n/cols, cols, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			row := i * cols
			if op == OpAdd {
				asm.Add(d[row:row+cols], x[row:row+cols], y)
			} else {
				asm.Mul(d[row:row+cols], x[row:row+cols], y)
			}
		}
	})
	return true
}

func overlapsShifted(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := &a[0], &b[0]
	if pa == pb {
		return false
	}
	sa, sb := uintptr(unsafe.Pointer(pa)), uintptr(unsafe.Pointer(pb))
	ea, eb := sa+uintptr(len(a))*4, sb+uintptr(len(b))*4
	return sa < eb && sb < ea
}
