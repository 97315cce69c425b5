package cudabackend

import (
	"fmt"
	"io"
	"sort"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// gemmFunc is the launcher contract shared by ftune's GEMMs and cuBLASLt
// (cuda.Device.MatmulBF16To's row-major product; C's type is fixed when the
// launcher is made, gemmFor).
type gemmFunc = func(s cuda.Stream, transA, transB bool, M, N, K int, a cuda.Ptr, lda int, b cuda.Ptr, ldb int, c cuda.Ptr, ldc int, alpha, beta float32) error

// openGEMM sets up the GEMM provider: cuBLASLt is opened when forced, or
// under auto in bf16 mode (auto leaves the float32 parity path on ftune's
// kernel, so it needs no cuBLASLt there). Forced and missing is an error
// with the loader's reason; auto and missing says so once in the log.
func (b *Backend) openGEMM() error {
	mode, err := ParseGEMMProvider(string(b.opt.GEMMProvider))
	if err != nil {
		return err
	}
	b.opt.GEMMProvider = mode
	log := b.opt.Log
	if log == nil {
		log = io.Discard
	}
	ltErr := ""
	if mode == GEMMCuBLASLt || mode == GEMMAuto && b.opt.BF16MatMul {
		l, err := b.dev.OpenBLASLt()
		switch {
		case err != nil && mode == GEMMCuBLASLt:
			return fmt.Errorf("gemm provider cublaslt: %w (or set gemm provider auto or ftune)", err)
		case err != nil:
			ltErr = err.Error()
			fmt.Fprintf(log, "gemm provider auto: cuBLASLt unavailable, ftune's kernels run every product: %s\n", ltErr)
		default:
			b.lt = l
			fmt.Fprintf(log, "gemm provider %s: %s\n", mode, l)
		}
	}
	b.gemm = newChooser(mode, ltErr, b.opt.Log)
	return nil
}

// GEMMChoices lists the provider each product shape ran on so far (auto
// and cublaslt), with auto's measured times.
func (b *Backend) GEMMChoices() []GEMMChoice { return b.gemm.choices() }

// gemmFor returns the launcher MatMul uses for operands of type in and C of
// type out: ftune's kernel, or a dispatcher that asks the chooser per
// shape. out is F32, or BF16 with bf16 operands (bf16 activations; MatMul
// allows them in BF16MatMul mode only): ftune's _cbf16 kernels, or cuBLASLt
// with a bf16 C layout (BF16 A, B, C with CUBLAS_COMPUTE_32F and float32
// alpha and beta is one of its documented type combinations: the float32
// result is converted to bf16 in its epilogue, as ours), timed against each
// other like the float32-output products (the shape key holds out). Not yet
// measured on a GPU: the ptx simulator has no cuBLASLt.
func (b *Backend) gemmFor(in, out cuda.DType) gemmFunc {
	ours := b.dev.MatmulF32
	if in == cuda.BF16 {
		ours = func(s cuda.Stream, transA, transB bool, M, N, K int, a cuda.Ptr, lda int, w cuda.Ptr, ldb int, c cuda.Ptr, ldc int, alpha, beta float32) error {
			// Options.WGMMA: the sm_90a kernel where it takes the product
			// and the product would not split K (it never splits).
			if b.opt.WGMMA && !transA && b.dev.WGMMATakesWith(b.opt.WGMMALoads, transB, N, K, lda, ldb, a, w) == nil && !b.dev.SplitsK(M, N, K) {
				return b.dev.MatmulWGMMAWith(s, b.opt.WGMMALoads, out, transB, M, N, K, a, lda, w, ldb, c, ldc, alpha, beta)
			}
			return b.dev.MatmulBF16To(s, out, transA, transB, M, N, K, a, lda, w, ldb, c, ldc, alpha, beta)
		}
	} else if out != cuda.F32 {
		// Unreachable through MatMul (float32 mode refuses bf16 activations);
		// said here rather than launching the float32 kernel on a bf16 C.
		return func(cuda.Stream, bool, bool, int, int, int, cuda.Ptr, int, cuda.Ptr, int, cuda.Ptr, int, float32, float32) error {
			return fmt.Errorf("cuda: %w: a float32 GEMM into a %v C", tensor.ErrUnsupported, out)
		}
	}
	if b.lt == nil {
		return ours
	}
	return func(s cuda.Stream, transA, transB bool, M, N, K int, a cuda.Ptr, lda int, w cuda.Ptr, ldb int, c cuda.Ptr, ldc int, alpha, beta float32) error {
		lt := func(m int, c cuda.Ptr, beta float32) error {
			return b.lt.Matmul(s, in, out, transA, transB, m, N, K, a, lda, w, ldb, c, ldc, alpha, beta)
		}
		ft := func(m int, c cuda.Ptr, beta float32) error {
			return ours(s, transA, transB, m, N, K, a, lda, w, ldb, c, ldc, alpha, beta)
		}
		k := gemmKey{f32: in == cuda.F32, outBF16: out == cuda.BF16, transA: transA, transB: transB, N: N, K: K, lda: lda, ldb: ldb, ldc: ldc,
			readC: beta != 0, align: min(alignOf(a), alignOf(w), alignOf(c))}
		k.M, k.bucketed = mBucket(M)
		if transA {
			k.lda = 0 // lda is M when a is transposed: bucketed with it
		}
		supports := func() error {
			return b.lt.Supports(in, out, transA, transB, M, N, K, a, lda, w, ldb, c, ldc, beta)
		}
		trial := func() (float64, float64, error) { return b.trialGEMM(out, M, N, ldc, c, beta, ft, lt) }
		useLt, err := b.gemm.pick(k, supports, trial)
		if err != nil {
			return err
		}
		if useLt {
			return lt(M, c, beta)
		}
		return ft(M, c, beta)
	}
}

// alignOf is the pointer's alignment in bytes, capped at 16.
func alignOf(p cuda.Ptr) uint32 {
	a := uint32(16)
	for a > 1 && uint64(p)%uint64(a) != 0 {
		a /= 2
	}
	return a
}

// Timing of auto's trials (per new shape, once):
//   - trialWarm runs of each provider first, untimed: module loading, the
//     JIT and cuBLASLt's kernel loading stay out of the figures;
//   - then trialReps pairs, each pair timed by device events on the
//     backend's stream, the order inside a pair alternating so neither
//     provider always runs on a warmer L2 or clock; the median of each
//     provider's times is compared (one outlier moves no median), and
//     cuBLASLt must win by autoMargin.
//
// Trials wait on events, which a stream being captured into a CUDA graph
// cannot do: graph capture (not used yet) must come after the first step,
// when every shape has been decided.
//
// Cost per new shape: 2·(trialWarm+trialReps) = 12 products and
// trialReps host waits, where a step would run one: a few milliseconds for
// the largest training GEMMs, paid on the first step only (a step of a
// Llama layer stack has a few dozen distinct shapes).
const trialWarm, trialReps = 1, 5

// trialBytes bounds the scratch output a trial with beta ≠ 0 uses.
const trialBytes = 256 << 20

// trialGEMM times both providers on the product's own operands (C of type
// ct). With beta = 0 they write dst itself (the real product overwrites it
// next); with beta ≠ 0 dst must not change, so they run on a scratch copy
// of dst's first rows: at most trialBytes, M' = trialBytes/(size·ldc) rows
// of the same product (same pointers, leading dimensions, N and K).
func (b *Backend) trialGEMM(ct cuda.DType, M, N, ldc int, c cuda.Ptr, beta float32, ours, lt func(m int, c cuda.Ptr, beta float32) error) (float64, float64, error) {
	m, out := M, c
	if beta != 0 {
		m = max(1, min(M, trialBytes/(ct.Size()*ldc)))
		n := (m-1)*ldc + N
		q, release, err := b.temp(ct, n)
		if err != nil {
			return 0, 0, err
		}
		defer release()
		if err := b.dev.CopyDtoDAsync(b.s, q, c, ct.Size()*n); err != nil {
			return 0, 0, err
		}
		out = q
	}
	runs := [2]func() error{func() error { return ours(m, out, beta) }, func() error { return lt(m, out, beta) }}
	for i := 0; i < trialWarm; i++ {
		for _, r := range runs {
			if err := r(); err != nil {
				return 0, 0, err
			}
		}
	}
	var ev [3]cuda.Event
	for i := range ev {
		e, err := b.dev.NewEvent()
		if err != nil {
			return 0, 0, err
		}
		defer b.dev.DestroyEvent(e)
		ev[i] = e
	}
	var times [2][]float64
	for i := 0; i < trialReps; i++ {
		first := i % 2 // alternate which provider goes first
		order := [2]int{first, 1 - first}
		if err := b.dev.Record(ev[0], b.s); err != nil {
			return 0, 0, err
		}
		for j, who := range order {
			if err := runs[who](); err != nil {
				return 0, 0, err
			}
			if err := b.dev.Record(ev[j+1], b.s); err != nil {
				return 0, 0, err
			}
		}
		if err := b.dev.SyncEvent(ev[2]); err != nil {
			return 0, 0, err
		}
		for j, who := range order {
			ms, err := b.dev.Elapsed(ev[j], ev[j+1])
			if err != nil {
				return 0, 0, err
			}
			times[who] = append(times[who], float64(ms))
		}
	}
	return median(times[0]), median(times[1]), nil
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}
