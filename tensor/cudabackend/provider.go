package cudabackend

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

// GEMMProvider names who computes MatMul's products (Options.GEMMProvider,
// the trainer's training.gemm_provider / --gemm-provider).
type GEMMProvider string

const (
	// GEMMFtune: ftune's own PTX kernels for every product (also what ""
	// means, so a zero Options tests and benchmarks ftune's kernels).
	GEMMFtune GEMMProvider = "ftune"
	// GEMMCuBLASLt: cuBLASLt for every product it has an algorithm for;
	// Open fails, with the reason, when the library is missing, and a
	// product cuBLASLt has no algorithm for is an error naming it.
	GEMMCuBLASLt GEMMProvider = "cublaslt"
	// GEMMAuto: per product shape, whichever of the two measured faster
	// (bf16 tensor-core mode); ftune's kernels when cuBLASLt is missing
	// (said once, in the log and in Path), and always for the float32
	// parity path (see gemmPlan).
	GEMMAuto GEMMProvider = "auto"
)

// GEMMProviders are the accepted names, for settings' error messages.
var GEMMProviders = []string{string(GEMMAuto), string(GEMMFtune), string(GEMMCuBLASLt)}

// ParseGEMMProvider accepts auto, ftune or cublaslt ("" is ftune).
func ParseGEMMProvider(s string) (GEMMProvider, error) {
	p := GEMMProvider(strings.ToLower(strings.TrimSpace(s)))
	if p == "" {
		return GEMMFtune, nil
	}
	if !slices.Contains(GEMMProviders, string(p)) {
		return "", fmt.Errorf("gemm provider %q (want %s)", s, strings.Join(GEMMProviders, ", "))
	}
	return p, nil
}

// gemmKey is one product shape as the providers see it: what its speed
// depends on (operand and output types, transposes, sizes, leading dimensions, whether
// C is read, and the operands' alignment up to 16 bytes, which decides
// cuBLASLt's vector loads). M, the token count of the Linear layers'
// products, is bucketed to the next power of two (mBucket): without
// packing it changes with every batch, and one trial per bucket decides
// for all the Ms in it.
type gemmKey struct {
	f32            bool // float32 operands (else bf16)
	outBF16        bool // C stored as bf16 (bf16 activations; else float32)
	transA, transB bool
	M, N, K        int
	lda, ldb, ldc  int
	readC          bool
	align          uint32 // min over A, B, C of the pointer alignment, capped at 16
	bucketed       bool   // M is the bucket of a smaller M
	// lowRank is the rank of a fused LoRA product's second pair (0: a
	// plain product): ftune's fused kernel against cuBLASLt's two products
	// (lowrank.go).
	lowRank int
}

// mBucket returns the key's M for m: m itself when a power of two, else
// the next power of two (bucketed true).
func mBucket(m int) (int, bool) {
	b := 1
	for b < m {
		b *= 2
	}
	return b, b != m
}

func (k gemmKey) String() string {
	t := "bf16"
	if k.f32 {
		t = "f32"
	}
	tr := []byte("nn")
	if k.transA {
		tr[0] = 't'
	}
	if k.transB {
		tr[1] = 't'
	}
	m := fmt.Sprintf("M=%d", k.M)
	if k.bucketed {
		m = fmt.Sprintf("M≤%d", k.M)
	}
	if k.outBF16 {
		t += "->bf16"
	}
	s := fmt.Sprintf("%s %s %s N=%d K=%d", tr, t, m, k.N, k.K)
	if k.readC {
		s += " C+="
	}
	if k.lowRank > 0 {
		s += fmt.Sprintf(" + rank-%d LoRA (fused)", k.lowRank)
	}
	return s
}

// GEMMChoice is the provider one product shape runs on, and why.
type GEMMChoice struct {
	Shape    string
	CuBLASLt bool
	// FtuneMs and CuBLASLtMs are the median times measured by auto (0:
	// not measured).
	FtuneMs, CuBLASLtMs float64
	Why                 string
}

func (c GEMMChoice) String() string {
	who := "ftune"
	if c.CuBLASLt {
		who = "cuBLASLt"
	}
	s := fmt.Sprintf("gemm %s: %s", c.Shape, who)
	if c.FtuneMs > 0 && c.CuBLASLtMs > 0 {
		s += fmt.Sprintf(" (ftune %.3f ms, cuBLASLt %.3f ms, %.2fx)", c.FtuneMs, c.CuBLASLtMs, c.FtuneMs/c.CuBLASLtMs)
	}
	if c.Why != "" {
		s += ": " + c.Why
	}
	return s
}

// autoMargin: auto takes cuBLASLt only when its median is this fraction
// faster than ftune's; inside it the two are within timing noise and
// ftune's kernel, the default, stays.
const autoMargin = 0.03

// chooser caches the provider of each product shape. It holds no device
// state: supports and trial are given per call, so its logic runs in tests
// without a GPU.
type chooser struct {
	mode GEMMProvider
	// ltErr is why cuBLASLt is unusable ("" when it loaded).
	ltErr string
	log   io.Writer

	mu     sync.Mutex
	choice map[gemmKey]GEMMChoice
}

func newChooser(mode GEMMProvider, ltErr string, log io.Writer) *chooser {
	if log == nil {
		log = io.Discard
	}
	return &chooser{mode: mode, ltErr: ltErr, log: log, choice: map[gemmKey]GEMMChoice{}}
}

// pick returns whether k runs on cuBLASLt. The first time a shape is seen
// it decides, logs the decision (one line) and caches it: supports says
// whether cuBLASLt has an algorithm for the shape; trial (auto only) times
// both providers and returns the median milliseconds of each. Forced
// cuBLASLt without an algorithm is an error naming the shape; a failed
// trial is an error too (a broken device, not a reason to guess).
func (c *chooser) pick(k gemmKey, supports func() error, trial func() (ftuneMs, ltMs float64, err error)) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.choice[k]; ok {
		return ch.CuBLASLt, nil
	}
	ch := GEMMChoice{Shape: k.String()}
	switch {
	case c.mode == GEMMFtune || c.mode == "":
		return false, nil // nothing to decide, nothing to log
	case c.mode == GEMMCuBLASLt:
		if err := supports(); err != nil {
			return false, fmt.Errorf("gemm provider cublaslt: %s: %w (set gemm provider auto or ftune)", k, err)
		}
		ch.CuBLASLt, ch.Why = true, "forced (gemm provider cublaslt)"
	case k.f32 || c.ltErr != "":
		// auto on the float32 parity path, or without cuBLASLt: ftune's
		// kernels throughout, said once when the backend opened (Path).
		return false, nil
	default:
		if err := supports(); err != nil {
			ch.Why = "cuBLASLt has no algorithm: " + err.Error()
			break
		}
		ours, lt, err := trial()
		if err != nil {
			return false, fmt.Errorf("gemm provider auto: timing %s: %w", k, err)
		}
		ch.FtuneMs, ch.CuBLASLtMs = ours, lt
		ch.CuBLASLt = lt < ours*(1-autoMargin)
		ch.Why = "measured"
	}
	c.choice[k] = ch
	fmt.Fprintln(c.log, ch)
	return ch.CuBLASLt, nil
}

// choices lists the decisions made so far, in shape order.
func (c *chooser) choices() []GEMMChoice {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GEMMChoice, 0, len(c.choice))
	for _, ch := range c.choice {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shape < out[j].Shape })
	return out
}
