package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// BLASLt is a cuBLASLt handle on one device with its workspace and a plan
// per GEMM shape (descriptors and the heuristic's algorithm, made once).
// Its methods may be called from any goroutine.
type BLASLt struct {
	d       *Device
	h       uintptr
	Path    string // the library file opened
	Version int    // cublasLtGetVersion, e.g. 130100
	ws      Ptr
	wsBytes int

	mu    sync.Mutex
	plans map[ltKey]*ltPlan
}

// ltKey is what a plan depends on: types, transposes, sizes, leading
// dimensions, whether C is read, and the operands' alignment (the
// heuristic is told the real alignment, so a plan made for aligned
// pointers is never run on unaligned ones).
type ltKey struct {
	in, out        DType
	transA, transB bool
	M, N, K        int
	lda, ldb, ldc  int
	readC          bool
	alA, alB, alC  uint32
}

type ltPlan struct {
	op, a, b, c uintptr // matmul and layout descriptors (c serves C and D)
	algo        ltAlgo
	ws          uint64 // the workspace the algorithm needs (≤ the handle's)
}

// ltWorkspace is the workspace cuBLASLt may use: 32 MiB on Hopper and
// newer, 4 MiB before, the sizes NVIDIA's cuBLAS guide recommends.
func ltWorkspace(major int) int {
	if major >= 9 {
		return 32 << 20
	}
	return 4 << 20
}

// OpenBLASLt loads cuBLASLt (LoadBLASLt), creates a handle on d and takes
// its workspace from d's allocator (so it counts under the device-memory
// cap). The error says why cuBLASLt is unusable.
func (d *Device) OpenBLASLt() (*BLASLt, error) {
	path, ver, err := LoadBLASLt()
	if err != nil {
		return nil, err
	}
	l := &BLASLt{d: d, Path: path, Version: ver, plans: map[ltKey]*ltPlan{}}
	if err := d.ltCall("cublasLtCreate", func() int32 { return cublasLtCreate(&l.h) }); err != nil {
		return nil, err
	}
	l.wsBytes = ltWorkspace(d.Major)
	if l.ws, err = d.alloc.Alloc(l.wsBytes); err != nil {
		l.Close()
		return nil, fmt.Errorf("cublaslt: workspace of %d MiB: %w", l.wsBytes>>20, err)
	}
	return l, nil
}

// String names the library for logs and env.json: version and file.
func (l *BLASLt) String() string {
	return fmt.Sprintf("cuBLASLt %d.%d.%d (%s)", l.Version/10000, l.Version/100%100, l.Version%100, l.Path)
}

// Close destroys the plans and the handle and frees the workspace.
func (l *BLASLt) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for k, p := range l.plans {
		keep(l.destroyPlan(p))
		delete(l.plans, k)
	}
	if l.ws != 0 {
		keep(l.d.alloc.Free(l.ws))
		l.ws = 0
	}
	if l.h != 0 {
		keep(l.d.ltCall("cublasLtDestroy", func() int32 { return cublasLtDestroy(l.h) }))
		l.h = 0
	}
	return first
}

// ltCall runs one cuBLASLt call with d's context current on this thread
// (cuBLASLt works in the calling thread's current context).
func (d *Device) ltCall(name string, f func() int32) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.exit()
	return ltCheck(name, f())
}

// alignment is the largest power of two up to 256 dividing p (256 for 0).
func alignment(p Ptr) uint32 {
	a := uint32(256)
	for a > 1 && uint64(p)%uint64(a) != 0 {
		a /= 2
	}
	return a
}

// Matmul computes C = alpha·op(A)·op(B) + beta·C with MatmulBF16's
// row-major contract: A and B of type in (BF16, or F32 for the float32
// path), C of type out (F32 or BF16), float32 accumulation
// (CUBLAS_COMPUTE_32F: float32 inputs are multiplied in float32, never in
// TF32). beta == 0 never reads C. Queued on s.
func (l *BLASLt) Matmul(s Stream, in, out DType, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, alpha, beta float32) error {
	if err := checkGemm("cublasLtMatmul", transA, transB, M, N, K, lda, ldb, ldc); err != nil {
		return err
	}
	if (in != BF16 && in != F32) || (out != F32 && out != BF16) {
		return badArg("cublasLtMatmul: %v inputs -> %v output (want BF16 or F32 -> F32 or BF16)", in, out)
	}
	if M == 0 || N == 0 {
		return nil
	}
	if K == 0 {
		// cuBLASLt refuses k = 0; ftune's contract is C = beta·C.
		return badArg("cublasLtMatmul: K = 0 (the caller scales C)")
	}
	key := ltKey{in: in, out: out, transA: transA, transB: transB, M: M, N: N, K: K, lda: lda, ldb: ldb, ldc: ldc,
		readC: beta != 0, alA: alignment(a), alB: alignment(b), alC: alignment(c)}
	p, err := l.plan(key)
	if err != nil {
		return err
	}
	// cuBLASLt's A is ftune's B and its B ftune's A (mapRowMajor).
	return l.d.ltCall("cublasLtMatmul", func() int32 {
		return cublasLtMatmul(l.h, p.op, unsafe.Pointer(&alpha), uint64(b), p.a, uint64(a), p.b, unsafe.Pointer(&beta),
			uint64(c), p.c, uint64(c), p.c, &p.algo, uint64(l.ws), uint64(l.wsBytes), s.h)
	})
}

// Supports reports whether cuBLASLt has an algorithm for this product (it
// makes and caches the plan): the provider choice asks before timing.
func (l *BLASLt) Supports(in, out DType, transA, transB bool, M, N, K int, a Ptr, lda int, b Ptr, ldb int, c Ptr, ldc int, beta float32) error {
	_, err := l.plan(ltKey{in: in, out: out, transA: transA, transB: transB, M: M, N: N, K: K, lda: lda, ldb: ldb, ldc: ldc,
		readC: beta != 0, alA: alignment(a), alB: alignment(b), alC: alignment(c)})
	return err
}

// plan returns the cached plan for k, making it on first use.
func (l *BLASLt) plan(k ltKey) (*ltPlan, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == 0 {
		return nil, fmt.Errorf("cublaslt: handle closed")
	}
	if p := l.plans[k]; p != nil {
		return p, nil
	}
	p, err := l.makePlan(k)
	if err != nil {
		return nil, fmt.Errorf("cublaslt: %s %v->%v M=%d N=%d K=%d lda=%d ldb=%d ldc=%d: %w",
			transName(k.transA, k.transB), k.in, k.out, k.M, k.N, k.K, k.lda, k.ldb, k.ldc, err)
	}
	l.plans[k] = p
	return p, nil
}

func ltType(t DType) int32 {
	if t == BF16 {
		return ltRBF16
	}
	return ltRF32
}

func (l *BLASLt) makePlan(k ltKey) (p *ltPlan, err error) {
	p = &ltPlan{}
	defer func() {
		if err != nil {
			l.destroyPlan(p)
		}
	}()
	m := mapRowMajor(k.transA, k.transB, k.M, k.N, k.K, k.lda, k.ldb, k.ldc)
	d := l.d
	if err := d.ltCall("cublasLtMatmulDescCreate", func() int32 { return cublasLtMatmulDescCreate(&p.op, ltComputeF32, ltRF32) }); err != nil {
		return nil, err
	}
	setOp := func(attr int32, trans bool) error {
		v := int32(ltOpN)
		if trans {
			v = ltOpT
		}
		return d.ltCall("cublasLtMatmulDescSetAttribute", func() int32 {
			return cublasLtMatmulDescSetAttribute(p.op, attr, unsafe.Pointer(&v), 4)
		})
	}
	if err := setOp(ltDescTransA, m.TransA); err != nil {
		return nil, err
	}
	if err := setOp(ltDescTransB, m.TransB); err != nil {
		return nil, err
	}
	layout := func(h *uintptr, t DType, rows, cols, ld int) error {
		return d.ltCall("cublasLtMatrixLayoutCreate", func() int32 {
			return cublasLtMatrixLayoutCreate(h, ltType(t), uint64(rows), uint64(cols), int64(ld))
		})
	}
	if err := layout(&p.a, k.in, m.ARows, m.ACols, m.LDA); err != nil {
		return nil, err
	}
	if err := layout(&p.b, k.in, m.BRows, m.BCols, m.LDB); err != nil {
		return nil, err
	}
	if err := layout(&p.c, k.out, m.CRows, m.CCols, m.LDC); err != nil {
		return nil, err
	}
	var pref uintptr
	if err := d.ltCall("cublasLtMatmulPreferenceCreate", func() int32 { return cublasLtMatmulPreferenceCreate(&pref) }); err != nil {
		return nil, err
	}
	defer d.ltCall("cublasLtMatmulPreferenceDestroy", func() int32 { return cublasLtMatmulPreferenceDestroy(pref) })
	ws := uint64(l.wsBytes)
	if err := d.ltCall("cublasLtMatmulPreferenceSetAttribute", func() int32 {
		return cublasLtMatmulPreferenceSetAttr(pref, ltPrefMaxWorkspace, unsafe.Pointer(&ws), 8)
	}); err != nil {
		return nil, err
	}
	// The real alignment of each operand (cuBLASLt's A is ftune's B).
	for i, al := range []uint32{k.alB, k.alA, k.alC, k.alC} {
		v := al
		if err := d.ltCall("cublasLtMatmulPreferenceSetAttribute", func() int32 {
			return cublasLtMatmulPreferenceSetAttr(pref, ltPrefAlignA+int32(i), unsafe.Pointer(&v), 4)
		}); err != nil {
			return nil, err
		}
	}
	var res ltHeuristic
	var got int32
	if err := d.ltCall("cublasLtMatmulAlgoGetHeuristic", func() int32 {
		return cublasLtMatmulAlgoGetHeuristic(l.h, p.op, p.a, p.b, p.c, p.c, pref, 1, &res, &got)
	}); err != nil {
		return nil, err
	}
	if got < 1 || res.state != 0 {
		return nil, fmt.Errorf("no algorithm for this product (heuristic returned %d, state %d)", got, res.state)
	}
	p.algo, p.ws = res.algo, res.workspace
	return p, nil
}

// destroyPlan frees a plan's descriptors (those made).
func (l *BLASLt) destroyPlan(p *ltPlan) error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	if p.op != 0 {
		keep(l.d.ltCall("cublasLtMatmulDescDestroy", func() int32 { return cublasLtMatmulDescDestroy(p.op) }))
	}
	for _, h := range []uintptr{p.a, p.b, p.c} {
		if h != 0 {
			keep(l.d.ltCall("cublasLtMatrixLayoutDestroy", func() int32 { return cublasLtMatrixLayoutDestroy(h) }))
		}
	}
	return first
}
