package tensor

import (
	"fmt"
	"runtime"

	"github.com/ftune/ftune/kernels/asm"
)

// cpuStorage holds exactly one of its slices, by dtype.
type cpuStorage struct {
	dt  DType
	f32 []float32
	f64 []float64
	u16 []uint16 // BF16 and F16 bit patterns
	i32 []int32
	i64 []int64
	nf4 *NF4Data
	// owned: Alloc made the memory (FromHost wraps the caller's), so
	// Release may recycle it (the CPU pool).
	owned bool
	// released: Release let go of the memory; n keeps Len.
	released bool
	n        int
}

func (s *cpuStorage) DType() DType { return s.dt }
func (s *cpuStorage) Len() int {
	if s.released {
		return s.n
	}
	switch s.dt {
	case F32:
		return len(s.f32)
	case F64:
		return len(s.f64)
	case BF16, F16:
		return len(s.u16)
	case I32:
		return len(s.i32)
	case I64:
		return len(s.i64)
	case NF4:
		return s.nf4.Len
	}
	return 0
}

// CPUBackend runs ops on the host: float32 compute through kernels/asm,
// float64 for references and gradient checks.
type CPUBackend struct {
	threads int
	// bf16MatMul rounds every float32 MatMul's operands to bf16 and sums
	// the products in float32 (asm.GemmBF16Dot*): see CPUBF16.
	bf16MatMul bool
}

var cpuDefault = &CPUBackend{threads: runtime.GOMAXPROCS(0)}

// CPU returns the shared host backend.
func CPUDefault() *CPUBackend { return cpuDefault }

var cpuBF16 = &CPUBackend{threads: runtime.GOMAXPROCS(0), bf16MatMul: true}

// CPUBF16 returns the host backend of precision bf16: every float32 MatMul
// (x·Wᵀ with W in float32, bf16 or NF4, and the gradients' products) and
// the attention's products (Q·Kᵀ, P·V and their gradients) round both
// operands to bf16 (to nearest even; NF4 once dequantized) and sum the
// products in float32, as PyTorch's autocast does for linear layers and
// matmuls, and their outputs stay float32. Everything else (softmax and
// log-sum-exp, norms, the loss, the optimizer) is the default backend's
// float32. On a CPU with AVX512_BF16 the products run on VDPBF16PS at up
// to twice Sgemm's speed, on arm64 with FEAT_BF16 on BFDOT
// (asm.BF16DotFast); elsewhere they are correct but slow. Tensors move freely between the two backends.
func CPUBF16() *CPUBackend { return cpuBF16 }

// CPUBF16Fast reports whether CPUBF16's products run on the CPU's bf16
// instructions (AVX512_BF16, arm64's BF16), faster than the default
// backend's float32.
func CPUBF16Fast() bool { return asm.BF16DotFast() }

// CPUBF16Instructions names the instructions CPUBF16's fast products need
// in this build ("AVX512_BF16 (VDPBF16PS)", "BF16 (BFDOT)"), or is "" where
// the build has none (asm.BF16DotISA).
func CPUBF16Instructions() string { return asm.BF16DotISA() }

// CPUBF16Speedup measures how many times faster CPUBF16's products run
// than the default backend's on this CPU (asm.BF16DotSpeedup: one
// 192×1024×1024 product each, about 15 ms).
func CPUBF16Speedup() float64 { return asm.BF16DotSpeedup() }

// BF16MatMul reports whether c is CPUBF16.
func (c *CPUBackend) BF16MatMul() bool { return c.bf16MatMul }

// cpuErr names the backend in an error of the shared checks (check.go).
func cpuErr(err error) error { return fmt.Errorf("cpu: %w", err) }

func (c *CPUBackend) Name() string   { return "cpu" }
func (c *CPUBackend) Device() Device { return Device{Kind: CPU} }

func (c *CPUBackend) Alloc(dt DType, n int) (Storage, error) {
	if dt == F32 && n >= PoolMinLen {
		switch buf, serving := cpuPoolState.take(n); {
		case buf != nil:
			return &cpuStorage{dt: dt, f32: buf, owned: true}, nil
		case serving:
			return &cpuStorage{dt: dt, f32: make([]float32, n, poolClass(n)), owned: true}, nil
		}
	}
	if s := newCPUStorage(dt, n); s != nil {
		s.owned = true
		return s, nil
	}
	return nil, fmt.Errorf("cpu: alloc of %v", dt)
}

// newCPUStorage allocates zeroed storage on the heap; nil for a dtype the
// CPU cannot allocate.
func newCPUStorage(dt DType, n int) *cpuStorage {
	s := &cpuStorage{dt: dt}
	switch dt {
	case F32:
		s.f32 = make([]float32, n)
	case F64:
		s.f64 = make([]float64, n)
	case BF16, F16:
		s.u16 = make([]uint16, n)
	case I32:
		s.i32 = make([]int32, n)
	case I64:
		s.i64 = make([]int64, n)
	default:
		return nil
	}
	return s
}

// FromHost wraps data without copying: the caller hands it over.
func (c *CPUBackend) FromHost(dt DType, data any) (Storage, error) {
	s := &cpuStorage{dt: dt}
	ok := false
	switch d := data.(type) {
	case []float32:
		s.f32, ok = d, dt == F32
	case []float64:
		s.f64, ok = d, dt == F64
	case []uint16:
		s.u16, ok = d, dt == BF16 || dt == F16
	case []int32:
		s.i32, ok = d, dt == I32
	case []int64:
		s.i64, ok = d, dt == I64
	case NF4Data:
		if err := d.check(); err != nil {
			return nil, err
		}
		d.Nested = nil // the CPU's GEMM panels read the float32 Absmax only
		s.nf4, ok = &d, dt == NF4
	}
	if !ok {
		return nil, fmt.Errorf("cpu: FromHost %T as %v", data, dt)
	}
	return s, nil
}

func (c *CPUBackend) ToHost(src *Tensor, dst any) error {
	s := src.st.(*cpuStorage)
	n, o := src.Numel(), src.offset
	if !src.IsContiguous() {
		return fmt.Errorf("cpu: ToHost of a strided view")
	}
	ok := false
	switch d := dst.(type) {
	case []float32:
		ok = s.dt == F32 && len(d) == n && copy(d, s.f32[o:o+n]) == n
	case []float64:
		ok = s.dt == F64 && len(d) == n && copy(d, s.f64[o:o+n]) == n
	case []uint16:
		ok = (s.dt == BF16 || s.dt == F16) && len(d) == n && copy(d, s.u16[o:o+n]) == n
	case []int32:
		ok = s.dt == I32 && len(d) == n && copy(d, s.i32[o:o+n]) == n
	case []int64:
		ok = s.dt == I64 && len(d) == n && copy(d, s.i64[o:o+n]) == n
	}
	if !ok && n > 0 {
		return fmt.Errorf("cpu: ToHost %v of %d elements into %T", s.dt, n, dst)
	}
	return nil
}

// F32Data exposes the float32 backing slice of a contiguous CPU tensor (its
// own window only); for kernels and tests that work on slices.
func F32Data(t *Tensor) []float32 {
	s, ok := t.st.(*cpuStorage)
	if !ok || s.dt != F32 || !t.IsContiguous() {
		fail("F32Data of %v (contiguous CPU F32 needed)", t)
	}
	return s.f32[t.offset : t.offset+t.Numel()]
}

// F64Data is F32Data for float64 tensors.
func F64Data(t *Tensor) []float64 {
	s, ok := t.st.(*cpuStorage)
	if !ok || s.dt != F64 || !t.IsContiguous() {
		fail("F64Data of %v (contiguous CPU F64 needed)", t)
	}
	return s.f64[t.offset : t.offset+t.Numel()]
}

// U16Data exposes BF16/F16 bit patterns of a contiguous CPU tensor.
func U16Data(t *Tensor) []uint16 {
	s, ok := t.st.(*cpuStorage)
	if !ok || (s.dt != BF16 && s.dt != F16) || !t.IsContiguous() {
		fail("U16Data of %v", t)
	}
	return s.u16[t.offset : t.offset+t.Numel()]
}

// get reads element i of the storage as float64 (any dtype).
func (s *cpuStorage) get(i int) float64 {
	switch s.dt {
	case F32:
		return float64(s.f32[i])
	case F64:
		return s.f64[i]
	case BF16:
		return float64(BF16ToF32(s.u16[i]))
	case F16:
		return float64(F16ToF32(s.u16[i]))
	case I32:
		return float64(s.i32[i])
	case I64:
		return float64(s.i64[i])
	case NF4:
		var v [1]float32
		asm.DequantNF4(v[:], s.nf4.Packed, s.nf4.Absmax, s.nf4.BlockSize, i)
		return float64(v[0])
	}
	return 0
}

func (s *cpuStorage) set(i int, v float64) {
	switch s.dt {
	case F32:
		s.f32[i] = float32(v)
	case F64:
		s.f64[i] = v
	case BF16:
		s.u16[i] = F32ToBF16(float32(v))
	case F16:
		s.u16[i] = F32ToF16(float32(v))
	case I32:
		s.i32[i] = int32(v)
	case I64:
		s.i64[i] = int64(v)
	}
}

// walk2 calls fn with the storage offsets of every element of two views of
// the same shape, row-major; the innermost axis is passed as a run so
// callers can vectorise it.
func walk2(shape Shape, sa []int, oa int, sb []int, ob int, fn func(ia, ib, n, stA, stB int)) {
	r := len(shape)
	if shape.Numel() == 0 {
		return
	}
	if r == 0 {
		fn(oa, ob, 1, 1, 1)
		return
	}
	inner := shape[r-1]
	idx := make([]int, r-1)
	for {
		ia, ib := oa, ob
		for i, x := range idx {
			ia += x * sa[i]
			ib += x * sb[i]
		}
		fn(ia, ib, inner, sa[r-1], sb[r-1])
		k := r - 2
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

func (c *CPUBackend) Copy(dst, src *Tensor) error {
	if !dst.shape.Equal(src.shape) {
		return fmt.Errorf("cpu: Copy %v into %v", src.shape, dst.shape)
	}
	d, s := dst.st.(*cpuStorage), src.st.(*cpuStorage)
	walk2(dst.shape, dst.strides, dst.offset, src.strides, src.offset, func(id, is, n, sd, ss int) {
		switch {
		case d.dt == s.dt && d.dt == F32 && sd == 1 && ss == 1:
			copy(d.f32[id:id+n], s.f32[is:is+n])
		case d.dt == s.dt && d.dt == F32:
			for k := 0; k < n; k++ {
				d.f32[id+k*sd] = s.f32[is+k*ss]
			}
		case d.dt == F32 && s.dt == BF16:
			for k := 0; k < n; k++ {
				d.f32[id+k*sd] = BF16ToF32(s.u16[is+k*ss])
			}
		case d.dt == s.dt && (d.dt == BF16 || d.dt == F16):
			for k := 0; k < n; k++ {
				d.u16[id+k*sd] = s.u16[is+k*ss]
			}
		case d.dt == I64 && s.dt == I64:
			for k := 0; k < n; k++ {
				d.i64[id+k*sd] = s.i64[is+k*ss]
			}
		default:
			for k := 0; k < n; k++ {
				d.set(id+k*sd, s.get(is+k*ss))
			}
		}
	})
	return nil
}

func (c *CPUBackend) Fill(dst *Tensor, v float64) error {
	d := dst.st.(*cpuStorage)
	walk2(dst.shape, dst.strides, dst.offset, dst.strides, dst.offset, func(id, _, n, sd, _ int) {
		if d.dt == F32 {
			f := float32(v)
			for k := 0; k < n; k++ {
				d.f32[id+k*sd] = f
			}
			return
		}
		for k := 0; k < n; k++ {
			d.set(id+k*sd, v)
		}
	})
	return nil
}

var _ Backend = (*CPUBackend)(nil)
