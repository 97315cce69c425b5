package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// cuBLASLt, NVIDIA's matrix-product library, as a second GEMM provider beside
// ftune's own kernels: opened at run time through purego (no cgo), so a
// build without it and a machine without it keep running ftune's kernels.
// The library is found by LoadBLASLt (cublaslt_load*.go); this file holds
// the bindings, the enums and the row-major to column-major mapping.

// Enum values of cublasLt.h / library_types.h (CUDA 12 and 13 agree).
const (
	ltComputeF32 = 68 // CUBLAS_COMPUTE_32F: float32 products and sums, never TF32 (that is CUBLAS_COMPUTE_32F_FAST_TF32, 77)
	ltRF32       = 0  // CUDA_R_32F
	ltRBF16      = 14 // CUDA_R_16BF

	ltDescTransA = 3 // CUBLASLT_MATMUL_DESC_TRANSA (int32 cublasOperation_t)
	ltDescTransB = 4 // CUBLASLT_MATMUL_DESC_TRANSB
	ltOpN, ltOpT = 0, 1

	ltPrefMaxWorkspace = 1 // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES (uint64)
	ltPrefAlignA       = 5 // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES (uint32); 6, 7, 8 for B, C, D
)

// ltAlgo is cublasLtMatmulAlgo_t: 64 opaque bytes (uint64_t data[8]).
type ltAlgo [8]uint64

// ltHeuristic is cublasLtMatmulHeuristicResult_t: the algorithm, the
// workspace it needs, its status and the waves count, then 4 reserved ints:
// 64 + 8 + 4 + 4 + 16 = 96 bytes (TestLtStructSizes).
type ltHeuristic struct {
	algo      ltAlgo
	workspace uint64
	state     int32
	_         float32 // wavesCount: not read
	_         [4]int32
}

// The cuBLASLt entry points (bound by LoadBLASLt). Opaque handles and
// descriptors are uintptr; every struct goes by pointer.
var (
	cublasLtCreate                  func(h *uintptr) int32
	cublasLtDestroy                 func(h uintptr) int32
	cublasLtGetVersion              func() uint64
	cublasLtMatmulDescCreate        func(d *uintptr, compute int32, scale int32) int32
	cublasLtMatmulDescDestroy       func(d uintptr) int32
	cublasLtMatmulDescSetAttribute  func(d uintptr, attr int32, buf unsafe.Pointer, n uint64) int32
	cublasLtMatrixLayoutCreate      func(l *uintptr, dt int32, rows, cols uint64, ld int64) int32
	cublasLtMatrixLayoutDestroy     func(l uintptr) int32
	cublasLtMatmulPreferenceCreate  func(p *uintptr) int32
	cublasLtMatmulPreferenceDestroy func(p uintptr) int32
	cublasLtMatmulPreferenceSetAttr func(p uintptr, attr int32, buf unsafe.Pointer, n uint64) int32
	cublasLtMatmulAlgoGetHeuristic  func(h, op, a, b, c, d, pref uintptr, want int32, res *ltHeuristic, got *int32) int32
	cublasLtMatmul                  func(h, op uintptr, alpha unsafe.Pointer, a uint64, ad uintptr, b uint64, bd uintptr, beta unsafe.Pointer, c uint64, cd uintptr, d uint64, dd uintptr, algo *ltAlgo, ws uint64, wsBytes uint64, s uintptr) int32
	cublasLtGetStatusString         func(status int32) unsafe.Pointer // optional (not in every 12.x)
)

// ltSymbols are the required bindings; cublasLtGetStatusString is optional.
func ltSymbols() []symbol {
	return []symbol{
		{&cublasLtCreate, "cublasLtCreate"},
		{&cublasLtDestroy, "cublasLtDestroy"},
		{&cublasLtGetVersion, "cublasLtGetVersion"},
		{&cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate"},
		{&cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy"},
		{&cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute"},
		{&cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate"},
		{&cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy"},
		{&cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate"},
		{&cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy"},
		{&cublasLtMatmulPreferenceSetAttr, "cublasLtMatmulPreferenceSetAttribute"},
		{&cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic"},
		{&cublasLtMatmul, "cublasLtMatmul"},
	}
}

// ltStatusNames are cublasStatus_t's names, for libraries without
// cublasLtGetStatusString.
var ltStatusNames = map[int32]string{
	0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
	7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// LtError is a failed cuBLASLt call: the call and its cublasStatus_t.
type LtError struct {
	Call   string
	Status int
	Name   string // e.g. CUBLAS_STATUS_NOT_SUPPORTED
	Detail string // the library's own sentence, when it has one
}

func (e *LtError) Error() string {
	s := fmt.Sprintf("cublaslt: %s: %s (%d)", e.Call, e.Name, e.Status)
	if e.Detail != "" && e.Detail != e.Name {
		s += ": " + e.Detail
	}
	return s
}

// ltCheck turns a cublasStatus_t into an error (nil for success).
func ltCheck(call string, st int32) error {
	if st == 0 {
		return nil
	}
	name, ok := ltStatusNames[st]
	if !ok {
		name = fmt.Sprintf("cublasStatus %d", st)
	}
	e := &LtError{Call: call, Status: int(st), Name: name}
	if cublasLtGetStatusString != nil {
		e.Detail = cString(cublasLtGetStatusString(st))
	}
	return e
}

// ltMapping is the column-major cuBLASLt product that computes ftune's
// row-major C[M,N] = op(A)·op(B). A row-major matrix read as column-major
// is its transpose, so C row-major is Cᵀ column-major, and
// Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLASLt's first operand is ftune's B, its second
// ftune's A, m and n swap, and each operand keeps its own transpose flag
// (B stored [K,N] row-major is exactly op(B)ᵀ = [N,K] column-major, so
// no transpose; B stored [N,K] (transB) reads as [K,N] and needs one).
type ltMapping struct {
	M, N, K        int  // cuBLASLt's m, n, k: ftune's N, M, K
	TransA, TransB bool // cuBLASLt's op on its A (ftune's B) and B (ftune's A)
	// Stored (pre-op) column-major layouts: rows, cols, leading dimension.
	ARows, ACols, LDA int // ftune's B buffer
	BRows, BCols, LDB int // ftune's A buffer
	CRows, CCols, LDC int // ftune's C buffer: N rows, M columns
}

// mapRowMajor maps ftune's row-major GEMM (the contract of MatmulBF16)
// onto cuBLASLt's column-major one.
func mapRowMajor(transA, transB bool, M, N, K, lda, ldb, ldc int) ltMapping {
	m := ltMapping{M: N, N: M, K: K, TransA: transB, TransB: transA, LDA: ldb, LDB: lda, CRows: N, CCols: M, LDC: ldc}
	// cuBLASLt's A = ftune's B: op(A) is [N,K] column-major.
	m.ARows, m.ACols = N, K
	if transB {
		m.ARows, m.ACols = K, N
	}
	// cuBLASLt's B = ftune's A: op(B) is [K,M] column-major.
	m.BRows, m.BCols = K, M
	if transA {
		m.BRows, m.BCols = M, K
	}
	return m
}

// ltLib is the process's cuBLASLt library, loaded once.
var ltLib struct {
	once    sync.Once
	path    string
	version int
	err     error
}
