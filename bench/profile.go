package bench

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/ftune/ftune/tensor"
)

// ProfiledBackend wraps a tensor.Backend and charges the time and the bytes
// of every call to an op family (GEMM, attention, norms, RoPE, SwiGLU, loss,
// elementwise, dropout, reductions, copies, offload copies, allocator), for
// the per-op profile of one
// training step that issue 10 asks to measure before changing anything.
//
// On a device whose ops are asynchronous, time is only attributable when each
// call is waited for: with Sync set (the CUDA backend's Sync), the wrapper
// synchronizes after every call, so each call's time is its device time plus
// one launch and one synchronization (a few µs: the profile over-counts small
// ops, and the step runs slower than unprofiled; compare families, not the
// sum, with the unprofiled step time). Bytes are the fewest an op must move:
// every operand read once and every output written once, at its dtype's size.
//
// Storages come from the inner backend, so kernels that check a storage's
// owner still accept them; the wrapper must be the backend the model is
// loaded on (nn.LoadOptions.Backend) for the calls to pass through it.
type ProfiledBackend struct {
	tensor.Backend
	// Sync waits for the device after each call; nil on a synchronous
	// backend (the CPU).
	Sync func() error

	mu  sync.Mutex
	fam map[string]*OpFamily
	// within, when set, takes every call's charge (see Within).
	within string
}

// OpFamily is one row of the profile.
type OpFamily struct {
	Family  string  `json:"family"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
}

// NewProfiledBackend wraps inner; sync may be nil.
func NewProfiledBackend(inner tensor.Backend, sync func() error) *ProfiledBackend {
	return &ProfiledBackend{Backend: inner, Sync: sync, fam: map[string]*OpFamily{}}
}

// Reset forgets everything charged so far (call it after the warm-up step).
func (p *ProfiledBackend) Reset() {
	p.mu.Lock()
	p.fam = map[string]*OpFamily{}
	p.mu.Unlock()
}

// Charge adds a span the wrapper cannot see (the host optimizer step, a
// readback) to a family.
func (p *ProfiledBackend) Charge(family string, d time.Duration, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fam[family]
	if f == nil {
		f = &OpFamily{Family: family}
		p.fam[family] = f
	}
	f.Calls++
	f.Seconds += d.Seconds()
	f.Bytes += bytes
}

// Within runs fn and charges its whole span, and every backend call made
// inside it, to family (the host optimizer step with its copies): each
// moment of the step is counted once.
func (p *ProfiledBackend) Within(family string, fn func() error) error {
	p.mu.Lock()
	p.within = family
	p.mu.Unlock()
	t0 := time.Now()
	err := fn()
	d := time.Since(t0)
	p.mu.Lock()
	p.within = ""
	p.mu.Unlock()
	p.Charge(family, d, 0)
	return err
}

// Families returns the rows, largest time first.
func (p *ProfiledBackend) Families() []OpFamily {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]OpFamily, 0, len(p.fam))
	for _, f := range p.fam {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seconds != out[j].Seconds {
			return out[i].Seconds > out[j].Seconds
		}
		return out[i].Family < out[j].Family
	})
	return out
}

// WriteTable prints the profile as markdown; stepSeconds (the profiled
// step's wall time) adds a "host gaps" row for the time no call accounts for.
func (p *ProfiledBackend) WriteTable(w io.Writer, stepSeconds float64) error {
	rows := p.Families()
	var sum float64
	for _, r := range rows {
		sum += r.Seconds
	}
	if _, err := fmt.Fprintf(w, "| op family | calls | ms | %% of step | GB moved | GB/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"); err != nil {
		return err
	}
	pct := func(s float64) float64 {
		if stepSeconds <= 0 {
			return 0
		}
		return 100 * s / stepSeconds
	}
	for _, r := range rows {
		bw := 0.0
		if r.Seconds > 0 {
			bw = float64(r.Bytes) / r.Seconds / 1e9
		}
		if _, err := fmt.Fprintf(w, "| %s | %d | %.2f | %.1f | %.3f | %.0f |\n", r.Family, r.Calls, 1e3*r.Seconds, pct(r.Seconds), float64(r.Bytes)/1e9, bw); err != nil {
			return err
		}
	}
	if stepSeconds > 0 {
		gap := max(stepSeconds-sum, 0)
		if _, err := fmt.Fprintf(w, "| host gaps | | %.2f | %.1f | | |\n", 1e3*gap, pct(gap)); err != nil {
			return err
		}
	}
	return nil
}

// span times fn, waits for the device and charges the family; the error is
// fn's, else the synchronization's.
func (p *ProfiledBackend) span(family string, bytes int64, fn func() error) error {
	t0 := time.Now()
	return p.charge(t0, family, bytes, fn())
}

// charge ends a span begun at t0 whose call returned err: it waits for the
// device and charges the family (span's second half).
func (p *ProfiledBackend) charge(t0 time.Time, family string, bytes int64, err error) error {
	if err == nil && p.Sync != nil {
		err = p.Sync()
	}
	d := time.Since(t0)
	p.mu.Lock()
	w := p.within
	p.mu.Unlock()
	if w != "" {
		// Inside Within: only the bytes; the span and the one call are
		// charged whole there.
		p.mu.Lock()
		if f := p.fam[w]; f != nil {
			f.Bytes += bytes
		} else {
			p.fam[w] = &OpFamily{Family: w, Bytes: bytes}
		}
		p.mu.Unlock()
		return err
	}
	p.Charge(family, d, bytes)
	return err
}

// nbytes is the size of the elements a view covers (nil: 0).
func nbytes(ts ...*tensor.Tensor) int64 {
	var n int64
	for _, t := range ts {
		if t != nil {
			n += int64(t.Numel()) * int64(t.DType().Size())
		}
	}
	return n
}

func (p *ProfiledBackend) Alloc(dt tensor.DType, n int) (st tensor.Storage, err error) {
	err = p.span("allocator", 0, func() error { st, err = p.Backend.Alloc(dt, n); return err })
	return st, err
}

// Release passes early release through to the inner backend (a no-op
// when it has none, as on the CPU), charged to the allocator: without it a
// profiled step would leave its activations to Go's collector.
func (p *ProfiledBackend) Release(st tensor.Storage) error {
	r, ok := p.Backend.(tensor.StorageReleaser)
	if !ok {
		return nil
	}
	return p.span("allocator", 0, func() error { return r.Release(st) })
}

func (p *ProfiledBackend) FromHost(dt tensor.DType, data any) (st tensor.Storage, err error) {
	err = p.span("copies and casts", 0, func() error { st, err = p.Backend.FromHost(dt, data); return err })
	return st, err
}

func (p *ProfiledBackend) ToHost(src *tensor.Tensor, dst any) error {
	return p.span("copies and casts", nbytes(src), func() error { return p.Backend.ToHost(src, dst) })
}

func (p *ProfiledBackend) Copy(dst, src *tensor.Tensor) error {
	return p.span("copies and casts", nbytes(dst, src), func() error { return p.Backend.Copy(dst, src) })
}

func (p *ProfiledBackend) Fill(dst *tensor.Tensor, v float64) error {
	return p.span("copies and casts", nbytes(dst), func() error { return p.Backend.Fill(dst, v) })
}

func (p *ProfiledBackend) MatMul(dst, a, b *tensor.Tensor, transA, transB bool, alpha, beta float64) error {
	n := nbytes(dst, a, b)
	if beta != 0 {
		n += nbytes(dst)
	}
	return p.span("gemm", n, func() error { return p.Backend.MatMul(dst, a, b, transA, transB, alpha, beta) })
}

func (p *ProfiledBackend) Binary(op tensor.BinaryOp, dst, a, b *tensor.Tensor) error {
	return p.span("elementwise", nbytes(dst, a, b), func() error { return p.Backend.Binary(op, dst, a, b) })
}

func (p *ProfiledBackend) Unary(op tensor.UnaryOp, dst, a *tensor.Tensor, arg float64) error {
	return p.span("elementwise", nbytes(dst, a), func() error { return p.Backend.Unary(op, dst, a, arg) })
}

func (p *ProfiledBackend) Reduce(op tensor.ReduceOp, dst, a *tensor.Tensor, axis int) error {
	return p.span("reductions and softmax", nbytes(dst, a), func() error { return p.Backend.Reduce(op, dst, a, axis) })
}

func (p *ProfiledBackend) Softmax(dst, a *tensor.Tensor, log bool) error {
	return p.span("reductions and softmax", nbytes(dst, a), func() error { return p.Backend.Softmax(dst, a, log) })
}

func (p *ProfiledBackend) RMSNorm(dst, invRMS, x, w *tensor.Tensor, eps float64) error {
	return p.span("norms", nbytes(dst, invRMS, x, w), func() error { return p.Backend.RMSNorm(dst, invRMS, x, w, eps) })
}

func (p *ProfiledBackend) RMSNormBackward(dx, dw, dy, x, w, invRMS *tensor.Tensor) error {
	return p.span("norms", nbytes(dx, dw, dy, x, w, invRMS), func() error { return p.Backend.RMSNormBackward(dx, dw, dy, x, w, invRMS) })
}

func (p *ProfiledBackend) RoPE(dst, x, cos, sin *tensor.Tensor, inverse bool) error {
	return p.span("rope", nbytes(dst, x, cos, sin), func() error { return p.Backend.RoPE(dst, x, cos, sin, inverse) })
}

func (p *ProfiledBackend) SwiGLU(dst, gate, up *tensor.Tensor) error {
	return p.span("swiglu", nbytes(dst, gate, up), func() error { return p.Backend.SwiGLU(dst, gate, up) })
}

func (p *ProfiledBackend) SwiGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	return p.span("swiglu", nbytes(dgate, dup, dy, gate, up), func() error { return p.Backend.SwiGLUBackward(dgate, dup, dy, gate, up) })
}

func (p *ProfiledBackend) Embedding(dst, table, ids *tensor.Tensor) error {
	return p.span("embedding", nbytes(dst, dst, ids), func() error { return p.Backend.Embedding(dst, table, ids) })
}

func (p *ProfiledBackend) EmbeddingBackward(dtable, dy, ids *tensor.Tensor) error {
	return p.span("embedding", 2*nbytes(dy)+nbytes(ids), func() error { return p.Backend.EmbeddingBackward(dtable, dy, ids) })
}

func (p *ProfiledBackend) Attention(out, lse, q, k, v *tensor.Tensor, ap tensor.AttentionParams) error {
	return p.span("attention", nbytes(out, lse, q, k, v), func() error { return p.Backend.Attention(out, lse, q, k, v, ap) })
}

func (p *ProfiledBackend) AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v *tensor.Tensor, ap tensor.AttentionParams) error {
	return p.span("attention", nbytes(dq, dk, dv, dout, out, lse, q, k, v), func() error {
		return p.Backend.AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, ap)
	})
}

func (p *ProfiledBackend) CrossEntropy(loss, dlogits, logits, labels *tensor.Tensor, ignoreIndex int, scale float32) error {
	return p.span("loss", nbytes(loss, dlogits, logits, labels), func() error {
		return p.Backend.CrossEntropy(loss, dlogits, logits, labels, ignoreIndex, scale)
	})
}

// AddRMSNorm and its backward keep the fused kernel of the profiled
// backend in the profile (a wrapper without them would hide the capability
// and the model would take the unfused ops). Over a backend without the
// fused kernel they run its Add and RMSNorm, as tensor.AddRMSNorm would.
func (p *ProfiledBackend) AddRMSNorm(h, y, invRMS, a, b, w *tensor.Tensor, eps float64) error {
	return p.span("norms", nbytes(h, y, invRMS, a, b, w), func() error {
		if fb, ok := p.Backend.(tensor.AddRMSNormBackend); ok {
			return fb.AddRMSNorm(h, y, invRMS, a, b, w, eps)
		}
		if err := p.Backend.Binary(tensor.OpAdd, h, a, b); err != nil {
			return err
		}
		return p.Backend.RMSNorm(y, invRMS, h, w, eps)
	})
}

func (p *ProfiledBackend) AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *tensor.Tensor) error {
	return p.span("norms", nbytes(dx, dw, dh, dy, h, w, invRMS), func() error {
		if fb, ok := p.Backend.(tensor.AddRMSNormBackend); ok {
			return fb.AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS)
		}
		if err := p.Backend.RMSNormBackward(dx, dw, dy, h, w, invRMS); err != nil {
			return err
		}
		if dh == nil {
			return nil
		}
		return p.Backend.Binary(tensor.OpAdd, dx, dx, dh)
	})
}

// The optional capabilities of the profiled backend pass through, each
// charged to its family: a wrapper without them would hide them, and the
// model would take another path than the unprofiled step (dropout masks
// drawn on the host and uploaded, no GeGLU or soft-cap kernel, and no
// offloaded checkpoints at all).
//
// Families: dropout, swiglu (GeGLU too), elementwise (soft-cap), offload
// copies.

// capability returns the inner backend as C, or an error naming what it
// lacks (neither backend ftune profiles lacks any of these).
func capability[C any](p *ProfiledBackend, what string) (C, error) {
	c, ok := p.Backend.(C)
	if !ok {
		return c, fmt.Errorf("bench: the profiled backend %s has no %s", p.Backend.Name(), what)
	}
	return c, nil
}

// MatMulLowRank passes a LoRA layer's fused product through, charged to
// gemm (its operands once, dst twice when read). A backend without it, or
// one that declines these operands, returns ErrUnsupported uncharged: the
// two products tensor.MatMulLowRankInto then runs are charged as MatMul.
func (p *ProfiledBackend) MatMulLowRank(dst, a, w, h, l *tensor.Tensor, transB bool, scale, beta float64, drop *tensor.DropoutStream) error {
	lb, ok := p.Backend.(tensor.LowRankBackend)
	if !ok {
		return fmt.Errorf("bench: %w: the profiled backend %s has no fused LoRA product", tensor.ErrUnsupported, p.Backend.Name())
	}
	n := nbytes(dst, a, w, h, l)
	if beta != 0 {
		n += nbytes(dst)
	}
	t0 := time.Now()
	err := lb.MatMulLowRank(dst, a, w, h, l, transB, scale, beta, drop)
	if errors.Is(err, tensor.ErrUnsupported) {
		return err
	}
	return p.charge(t0, "gemm", n, err)
}

// MatMulDropoutA passes the product with dropout inside through, charged
// to gemm like MatMulLowRank (declined calls uncharged).
func (p *ProfiledBackend) MatMulDropoutA(dst, a, w *tensor.Tensor, drop *tensor.DropoutStream) error {
	db, ok := p.Backend.(tensor.DropoutMatMulBackend)
	if !ok {
		return fmt.Errorf("bench: %w: the profiled backend %s has no product with dropout inside", tensor.ErrUnsupported, p.Backend.Name())
	}
	t0 := time.Now()
	err := db.MatMulDropoutA(dst, a, w, drop)
	if errors.Is(err, tensor.ErrUnsupported) {
		return err
	}
	return p.charge(t0, "gemm", nbytes(dst, a, w), err)
}

// MatMulTDropoutB passes dA's product with dropout inside through, as
// MatMulDropoutA.
func (p *ProfiledBackend) MatMulTDropoutB(dst, a, b *tensor.Tensor, drop *tensor.DropoutStream) error {
	db, ok := p.Backend.(tensor.DropoutMatMulBackend)
	if !ok {
		return fmt.Errorf("bench: %w: the profiled backend %s has no product with dropout inside", tensor.ErrUnsupported, p.Backend.Name())
	}
	t0 := time.Now()
	err := db.MatMulTDropoutB(dst, a, b, drop)
	if errors.Is(err, tensor.ErrUnsupported) {
		return err
	}
	return p.charge(t0, "gemm", nbytes(dst, a, b), err)
}

func (p *ProfiledBackend) Dropout(dst, x *tensor.Tensor, key, pos uint64, drop uint32, keep float32) error {
	d, err := capability[tensor.DropoutBackend](p, "dropout kernel")
	if err != nil {
		return err
	}
	return p.span("dropout", nbytes(dst, x), func() error { return d.Dropout(dst, x, key, pos, drop, keep) })
}

func (p *ProfiledBackend) GeGLU(dst, gate, up *tensor.Tensor) error {
	g, err := capability[tensor.GeGLUBackend](p, "GeGLU kernel")
	if err != nil {
		return err
	}
	return p.span("swiglu", nbytes(dst, gate, up), func() error { return g.GeGLU(dst, gate, up) })
}

func (p *ProfiledBackend) GeGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	g, err := capability[tensor.GeGLUBackend](p, "GeGLU kernel")
	if err != nil {
		return err
	}
	return p.span("swiglu", nbytes(dgate, dup, dy, gate, up), func() error { return g.GeGLUBackward(dgate, dup, dy, gate, up) })
}

func (p *ProfiledBackend) Softcap(dst, x *tensor.Tensor, c float64) error {
	s, err := capability[tensor.SoftcapBackend](p, "soft-cap kernel")
	if err != nil {
		return err
	}
	return p.span("elementwise", nbytes(dst, x), func() error { return s.Softcap(dst, x, c) })
}

func (p *ProfiledBackend) SoftcapBackward(dx, dy, y *tensor.Tensor, c float64) error {
	s, err := capability[tensor.SoftcapBackend](p, "soft-cap kernel")
	if err != nil {
		return err
	}
	return p.span("elementwise", nbytes(dx, dy, y), func() error { return s.SoftcapBackward(dx, dy, y, c) })
}

// OffloadToHost charges both copies of an offloaded checkpoint (the copy
// back goes through the returned copy: its prefetch and its restore) to
// "offload copies".
func (p *ProfiledBackend) OffloadToHost(st tensor.Storage) (tensor.HostCopy, error) {
	o, err := capability[tensor.HostOffloader](p, "host offload")
	if err != nil {
		return nil, err
	}
	var h tensor.HostCopy
	err = p.span("offload copies", int64(st.Len())*int64(st.DType().Size()), func() error {
		var err error
		h, err = o.OffloadToHost(st)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &profiledCopy{HostCopy: h, p: p}, nil
}

// profiledCopy charges the copy back's bytes to the call that queues it:
// Prefetch, or Restore when nothing prefetched.
type profiledCopy struct {
	tensor.HostCopy
	p    *ProfiledBackend
	back bool // the copy back was queued
}

func (c *profiledCopy) Prefetch() error {
	var bytes int64
	if !c.back {
		bytes = c.Bytes()
	}
	c.back = true
	return c.p.span("offload copies", bytes, c.HostCopy.Prefetch)
}

func (c *profiledCopy) Restore() (st tensor.Storage, err error) {
	var bytes int64
	if !c.back {
		bytes = c.Bytes()
	}
	c.back = true
	err = c.p.span("offload copies", bytes, func() error { st, err = c.HostCopy.Restore(); return err })
	return st, err
}
