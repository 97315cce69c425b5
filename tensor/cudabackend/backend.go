package cudabackend

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Options choose the device and the GEMM precision.
type Options struct {
	Device int // CUDA ordinal
	// BF16MatMul runs MatMul on the tensor cores with bf16 operands (float32
	// accumulation, results ~1e-2 relative to a float32 product); otherwise
	// GEMMs are float32 (bf16 weights widened), matching the CPU backend.
	BF16MatMul bool
	// MaxDeviceMemory caps the bytes the device's caching allocator
	// reserves (the trainer's --max-device-memory); 0: no cap. Past it an
	// allocation fails with cuda.OutOfMemoryError naming the cap.
	MaxDeviceMemory int64
	// GEMMProvider chooses who computes MatMul's products: "" or ftune
	// (ftune's kernels), cublaslt, or auto (per shape, by measured speed);
	// see provider.go.
	GEMMProvider GEMMProvider
	// AttentionKernel chooses the attention kernels: "" or auto, flash or
	// simt; see attention.go.
	AttentionKernel AttentionKernel
	// UnfusedLoRA runs a LoRA layer's base and low-rank products as two
	// GEMMs, as before the fused kernel (lowrank.go): the before/after of
	// gpubench, and a way around the fused kernel should it misbehave.
	UnfusedLoRA bool
	// WGMMA runs ftune's nt and nn products (every Linear layer's forward
	// and input gradient) on the sm_90a wgmma kernels
	// (cuda.Device.MatmulWGMMABF16To, and MatmulLoRAWGMMABF16 for the fused
	// LoRA products) on a compute capability 9.0 GPU, in bf16 mode, where
	// they take the product; off by
	// default until a GPU run has validated and timed it (opening with it
	// on another GPU is an error).
	WGMMA bool
	// WGMMALoads picks the sm_90a kernels' loads under WGMMA: cp.async
	// ("" or cuda.WGMMACpAsync), TMA (cuda.WGMMATMA) or TMA from a
	// producer warpgroup (cuda.WGMMAWarpSpecialized); benchmarks compare
	// them until a GPU run has chosen. Set without WGMMA, it is an error.
	WGMMALoads cuda.WGMMALoads
	// Log receives the GEMM provider lines (cuBLASLt missing under auto,
	// each shape's choice, once) and, once, that a product ran with K
	// unsplit under the device-memory cap; nil discards them.
	Log io.Writer
}

// Backend is a tensor.Backend on one GPU.
type Backend struct {
	dev   *cuda.Device
	alloc *cuda.Allocator
	s     cuda.Stream // zero: the legacy default stream (see doc.go)
	opt   Options

	// noFastAttention forces the masked attention kernels (tests use it to
	// compare both paths).
	noFastAttention bool

	// sinceGC counts the bytes allocated since the last garbage collection
	// that only the collector can give back: a storage nobody releases
	// returns its device memory through its cleanup, and Go's collector
	// does not see device bytes. Release takes a storage's bytes off the
	// count: a training step releases its activations and gradients as
	// the backward passes them.
	//
	// Alloc forces a collection when the caching allocator has no block of
	// the size asked for (the reserve would grow) and more than gcEvery
	// such bytes were allocated since the last one (and on out-of-memory).
	// Not on every gcEvery bytes: most of those are alive (a block's
	// activations, released in the backward), and at long sequences a
	// block alone holds more than gcEvery, so that rule forced 227
	// collections in one Llama-3-8B step at 81,920 tokens (9 of its 11 s
	// of host time; bench/results/gpu-host-time-2026-12-05.md), each
	// holding up the host thread that queues the kernels. A request the
	// cache serves costs no memory, whatever is dead. forcedGCs counts
	// the collections.
	sinceGC   atomic.Int64
	gcEvery   int64
	forcedGCs atomic.Int64
	// unsplitNoted: the log has said a product ran with K unsplit.
	unsplitNoted atomic.Bool

	// gemm chooses each product's provider; lt is cuBLASLt (nil when not
	// used or not found; gemm.ltErr says why).
	gemm *chooser
	lt   *cuda.BLASLt

	// pinned pools the page-locked host buffers of offloaded values;
	// copier orders their copies, on a stream of their own (offload.go).
	pinned pinnedPool
	copier copier

	mu   sync.Mutex
	iota devBuf // int32 0, 1, 2, ...: RoPE positions
	ones devBuf // float32 ones: RMSNorm without a weight
}

type devBuf struct {
	p cuda.Ptr
	n int
}

// Available reports whether a GPU can be used, and why not (one line).
func Available() (bool, string) { return cuda.Available() }

// Open returns a backend on the device opt.Device.
func Open(opt Options) (*Backend, error) {
	if ok, reason := cuda.Available(); !ok {
		return nil, fmt.Errorf("cuda backend: %s", reason)
	}
	d, err := cuda.Open(opt.Device)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %w", err)
	}
	if opt.MaxDeviceMemory < 0 {
		return nil, fmt.Errorf("cuda backend: device-memory cap %d bytes: want ≥ 0", opt.MaxDeviceMemory)
	}
	switch {
	case opt.WGMMA && !opt.BF16MatMul:
		return nil, fmt.Errorf("cuda backend: the wgmma GEMM is a bf16 kernel: it needs BF16MatMul (precision bf16)")
	case opt.WGMMA && !d.Hopper():
		return nil, fmt.Errorf("cuda backend: the wgmma GEMM runs on compute capability 9.0 only; %s is %d.%d", d.Name, d.Major, d.Minor)
	case opt.WGMMALoads != "" && !opt.WGMMA:
		return nil, fmt.Errorf("cuda backend: wgmma loads %q without the wgmma GEMM (Options.WGMMA)", opt.WGMMALoads)
	case opt.WGMMALoads != "" && !opt.WGMMALoads.Valid():
		return nil, fmt.Errorf("cuda backend: wgmma loads %q: want one of %v", opt.WGMMALoads, cuda.WGMMALoadsNames)
	}
	if opt.WGMMALoads == "" {
		opt.WGMMALoads = cuda.WGMMACpAsync
	}
	if err := d.Allocator().SetLimit(opt.MaxDeviceMemory); err != nil {
		return nil, fmt.Errorf("cuda backend: device-memory cap: %w", err)
	}
	gcEvery := d.TotalMem / 16
	if opt.MaxDeviceMemory > 0 {
		gcEvery = min(gcEvery, opt.MaxDeviceMemory/16)
	}
	b := &Backend{dev: d, alloc: d.Allocator(), opt: opt, gcEvery: gcEvery}
	if err := b.openAttention(); err != nil {
		return nil, fmt.Errorf("cuda backend: %w", err)
	}
	if err := b.openGEMM(); err != nil {
		return nil, fmt.Errorf("cuda backend: %w", err)
	}
	return b, nil
}

// CUDADevice is the kernels/cuda device, for callers that launch kernels
// themselves (the trainer's fused optimizer).
func (b *Backend) CUDADevice() *cuda.Device { return b.dev }

// ForcedGCs is how many garbage collections Alloc has forced so far to
// get back the device memory of storages nobody released.
func (b *Backend) ForcedGCs() int64 { return b.forcedGCs.Load() }

// Stats returns the caching allocator's counts.
func (b *Backend) Stats() cuda.AllocStats { return b.alloc.Stats() }

// cudaErr names the backend in an error of tensor's shared shape checks.
func cudaErr(err error) error { return fmt.Errorf("cuda: %w", err) }

func (b *Backend) Name() string {
	if b.opt.BF16MatMul {
		return fmt.Sprintf("cuda:%d/bf16", b.opt.Device)
	}
	return fmt.Sprintf("cuda:%d", b.opt.Device)
}

func (b *Backend) Device() tensor.Device {
	return tensor.Device{Kind: tensor.CUDA, Index: b.opt.Device}
}

// Sync waits until all queued work has finished (and reports a failed
// kernel).
func (b *Backend) Sync() error { return b.dev.Synchronize() }

// storage is n elements of dt at p. Its memory goes back to the allocator
// when the storage is collected (runtime.AddCleanup).
type storage struct {
	b  *Backend
	dt tensor.DType
	n  int
	p  cuda.Ptr
	// NF4 only: p holds the packed nibbles, absmax one float32 scale per
	// block of blockSize elements, or, when nested is set, the buffer of the
	// double-quantized scales that nested points into (nf4.go).
	absmax    cuda.Ptr
	blockSize int
	nested    *cuda.NF4Nested

	// released: Release gave the memory back (p is 0); cleanup is the
	// collector's free, stopped by Release so the block is freed once.
	released bool
	cleanup  runtime.Cleanup
	// copying: a copy to pinned host memory on the copy stream may still
	// read the block, which Release then leaves to settle (offload.go);
	// copied is the copy's end.
	copying bool
	copied  cuda.Event

	// host is a copy of an integer storage's elements as FromHost uploaded
	// them, kept while nothing else may have written the storage (ptr
	// drops it; readers that only read take readPtr). A step's integer
	// tensors are its token ids, labels, key mask and document ids, and the
	// host needs some of them (the loss counts and shifts labels, ids are
	// checked against the vocabulary): with this copy it reads them
	// without waiting for the GPU (ToHost, ids32).
	host atomic.Pointer[[]int64]
}

// mirrorMax bounds the elements of an integer storage kept on the host
// (8 MiB): a batch's ids and labels are far below it.
const mirrorMax = 1 << 20

// mirror keeps a copy of d, the storage's elements, on the host.
func (s *storage) mirror(d any) {
	var m []int64
	switch d := d.(type) {
	case []int32:
		if len(d) > mirrorMax {
			return
		}
		m = make([]int64, len(d))
		for i, v := range d {
			m[i] = int64(v)
		}
	case []int64:
		if len(d) > mirrorMax {
			return
		}
		m = append([]int64(nil), d...)
	}
	s.host.Store(&m)
}

// hostInts returns t's elements from its storage's host copy, or nil when
// there is none (t is not an integer tensor uploaded by FromHost and
// unwritten since, or not contiguous).
func (b *Backend) hostInts(t *tensor.Tensor) []int64 {
	s, ok := t.Storage().(*storage)
	if !ok || s.b != b || s.released || !t.IsContiguous() {
		return nil
	}
	m := s.host.Load()
	if m == nil {
		return nil
	}
	off := t.Offset()
	return (*m)[off : off+t.Numel()]
}

func (s *storage) DType() tensor.DType { return s.dt }
func (s *storage) Len() int            { return s.n }

// kdt maps a tensor dtype to the kernels' storage type.
func kdt(dt tensor.DType) (cuda.DType, error) {
	switch dt {
	case tensor.F32:
		return cuda.F32, nil
	case tensor.BF16:
		return cuda.BF16, nil
	case tensor.F64:
		return cuda.F64, nil
	case tensor.I32:
		return cuda.I32, nil
	case tensor.I64:
		return cuda.I64, nil
	}
	return 0, fmt.Errorf("cuda: %w: %v storage", tensor.ErrUnsupported, dt)
}

func (b *Backend) Alloc(dt tensor.DType, n int) (tensor.Storage, error) {
	if _, err := kdt(dt); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("cuda: alloc of %d elements", n)
	}
	s := &storage{b: b, dt: dt, n: n}
	if n == 0 {
		return s, nil
	}
	if b.copier.pending.Load() > 0 {
		// Blocks of offloaded values whose copies have finished.
		if err := b.settle(false); err != nil {
			return nil, fmt.Errorf("cuda: alloc %d x %v: %w", n, dt, err)
		}
	}
	bytes := n * dt.Size()
	p, cached := b.alloc.AllocCached(bytes)
	if !cached {
		// The cache has no block of this size: before the reserve grows,
		// let the collector find the storages nobody released, if enough
		// such bytes may have died since the last collection.
		if b.gcEvery > 0 && b.sinceGC.Load() > b.gcEvery {
			b.sinceGC.Store(0)
			b.forcedGCs.Add(1)
			runtime.GC() // their cleanups free the blocks, for this or a later request
		}
		var err error
		p, err = b.alloc.Alloc(bytes)
		if errors.Is(err, cuda.ErrOutOfMemory) {
			if err := b.settle(true); err != nil {
				return nil, fmt.Errorf("cuda: alloc %d x %v: %w", n, dt, err)
			}
			b.collect()
			p, err = b.alloc.Alloc(bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("cuda: alloc %d x %v: %w", n, dt, err)
		}
	}
	b.sinceGC.Add(int64(bytes))
	s.p = p
	a := b.alloc
	s.cleanup = runtime.AddCleanup(s, func(p cuda.Ptr) { _ = a.Free(p) }, p)
	return s, nil
}

// Release gives a storage's device memory back to the caching allocator
// now instead of when the collector finds the storage dead
// (tensor.StorageReleaser; autograd's Tape.ReleaseActivations calls it as
// the backward passes each activation's last use). Work already queued
// that reads the block stays correct: the allocator hands blocks out again
// in stream order on the backend's stream, and a block an offload's copy
// may still read waits for the copy (offload.go).
func (b *Backend) Release(st tensor.Storage) error {
	s, ok := st.(*storage)
	if !ok || s.b != b {
		return fmt.Errorf("cuda: release of a storage not on backend %s", b.Name())
	}
	b.copier.mu.Lock()
	defer b.copier.mu.Unlock()
	if s.released {
		return fmt.Errorf("cuda: storage of %d x %v released twice", s.n, s.dt)
	}
	s.released = true
	if s.dt != tensor.NF4 {
		b.collectedAnyway(int64(s.n * s.dt.Size()))
	}
	if s.copying {
		return nil // settle frees it
	}
	return b.free(s)
}

// collectedAnyway takes n released bytes off sinceGC (not below 0: the
// storage may predate the last collection).
func (b *Backend) collectedAnyway(n int64) {
	for {
		v := b.sinceGC.Load()
		if b.sinceGC.CompareAndSwap(v, max(0, v-n)) {
			return
		}
	}
}

// free gives a released storage's blocks back to the allocator. Call with
// b.copier.mu held.
func (b *Backend) free(s *storage) error {
	if s.p == 0 && s.absmax == 0 {
		return nil // zero elements: nothing allocated
	}
	s.cleanup.Stop()
	p, q := s.p, s.absmax
	s.p, s.absmax = 0, 0
	if err := b.alloc.Free(p); err != nil {
		return err
	}
	if q != 0 {
		return b.alloc.Free(q)
	}
	return nil
}

// collect runs the collector and waits (≤ 0.2 s) for the cleanups of dead
// storages to return their device memory, then gives cached blocks back.
func (b *Backend) collect() {
	before := b.alloc.Stats().Live
	runtime.GC()
	for i := 0; i < 100; i++ {
		time.Sleep(2 * time.Millisecond)
		if b.alloc.Stats().Live < before {
			break
		}
	}
	_ = b.alloc.Trim()
}

// FromHost copies data to the device ([]float32 F32, []float64 F64,
// []uint16 BF16, []int32 I32, []int64 I64, tensor.NF4Data NF4).
func (b *Backend) FromHost(dt tensor.DType, data any) (tensor.Storage, error) {
	if d, ok := data.(tensor.NF4Data); ok && dt == tensor.NF4 {
		return b.fromNF4(d)
	}
	n := -1
	switch d := data.(type) {
	case []float32:
		if dt == tensor.F32 {
			n = len(d)
		}
	case []float64:
		if dt == tensor.F64 {
			n = len(d)
		}
	case []uint16:
		if dt == tensor.BF16 {
			n = len(d)
		}
	case []int32:
		if dt == tensor.I32 {
			n = len(d)
		}
	case []int64:
		if dt == tensor.I64 {
			n = len(d)
		}
	}
	if n < 0 {
		if dt == tensor.F16 {
			return nil, fmt.Errorf("cuda: %w: FromHost %T as %v", tensor.ErrUnsupported, data, dt)
		}
		return nil, fmt.Errorf("cuda: FromHost %T as %v", data, dt)
	}
	st, err := b.Alloc(dt, n)
	if err != nil || n == 0 {
		return st, err
	}
	s := st.(*storage)
	p := s.p
	// Queued without waiting for the work before it (cuda.QueueHtoD): an
	// upload in the middle of a step, a batch's shifted labels or its RoPE
	// tables, leaves the GPU's queue as it is.
	switch d := data.(type) {
	case []float32:
		err = cuda.QueueHtoD(b.dev, b.s, p, d)
	case []float64:
		err = cuda.QueueHtoD(b.dev, b.s, p, d)
	case []uint16:
		err = cuda.QueueHtoD(b.dev, b.s, p, d)
	case []int32:
		err = cuda.QueueHtoD(b.dev, b.s, p, d)
		s.mirror(d)
	case []int64:
		err = cuda.QueueHtoD(b.dev, b.s, p, d)
		s.mirror(d)
	}
	if err != nil {
		return nil, fmt.Errorf("cuda: FromHost %d x %v: %w", n, dt, err)
	}
	return st, nil
}

// fromNF4 uploads packed NF4 codes and their block scales (float32, or
// double-quantized when d.Nested is set: nf4.go); the format (first element
// in the high nibble) is the kernels' as well.
func (b *Backend) fromNF4(d tensor.NF4Data) (tensor.Storage, error) {
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	s := &storage{b: b, dt: tensor.NF4, n: d.Len, blockSize: d.BlockSize}
	if d.Len == 0 {
		return s, nil
	}
	p, err := b.alloc.Alloc(len(d.Packed))
	if err != nil {
		return nil, fmt.Errorf("cuda: NF4 upload: %w", err)
	}
	q, err := b.alloc.Alloc(nf4ScaleBytes(d))
	if err != nil {
		_ = b.alloc.Free(p)
		return nil, fmt.Errorf("cuda: NF4 upload: %w", err)
	}
	s.p, s.absmax = p, q
	a := b.alloc
	s.cleanup = runtime.AddCleanup(s, func(ps [2]cuda.Ptr) { _ = a.Free(ps[0]); _ = a.Free(ps[1]) }, [2]cuda.Ptr{p, q})
	if err := cuda.CopyHtoD(b.dev, p, d.Packed); err != nil {
		return nil, fmt.Errorf("cuda: NF4 upload: %w", err)
	}
	if s.nested, err = uploadNF4Scales(b.dev, q, d); err != nil {
		return nil, err
	}
	return s, nil
}

// dequantNF4 expands a whole NF4 tensor (offset 0, contiguous) into n
// elements of t (F32 or BF16) at dst.
func (b *Backend) dequantNF4(dst cuda.Ptr, t cuda.DType, src *tensor.Tensor) error {
	s, ok := src.Storage().(*storage)
	if !ok || s.b != b || s.dt != tensor.NF4 {
		return fmt.Errorf("cuda: tensor %v is not NF4 on backend %s", src, b.Name())
	}
	if s.released {
		return fmt.Errorf("cuda: NF4 tensor %v used after its storage was released", src)
	}
	if src.Offset() != 0 || !src.IsContiguous() || src.Numel() != s.n {
		return fmt.Errorf("cuda: %w: a view of an NF4 tensor (whole weights only)", tensor.ErrUnsupported)
	}
	if s.nested != nil {
		return b.dev.NF4DQDequant(b.s, t, dst, s.p, int64(s.n), s.blockSize, *s.nested)
	}
	return b.dev.NF4Dequant(b.s, t, dst, s.p, s.absmax, int64(s.n), s.blockSize)
}

// ptr returns the device address of t's first element, checking that t
// lives on this backend. The caller may write through it, so an integer
// storage's host copy is dropped (readPtr keeps it).
func (b *Backend) ptr(t *tensor.Tensor) (cuda.Ptr, error) {
	p, err := b.readPtr(t)
	if err == nil && p != 0 {
		if s := t.Storage().(*storage); s.host.Load() != nil {
			s.host.Store(nil)
		}
	}
	return p, err
}

// readPtr is ptr for an operand the caller's kernels only read.
func (b *Backend) readPtr(t *tensor.Tensor) (cuda.Ptr, error) {
	if t == nil {
		return 0, nil
	}
	s, ok := t.Storage().(*storage)
	if !ok || s.b != b {
		return 0, fmt.Errorf("cuda: tensor %v is not on backend %s", t, b.Name())
	}
	if s.released {
		return 0, fmt.Errorf("cuda: tensor %v used after its storage was released", t)
	}
	if s.dt == tensor.NF4 {
		return 0, fmt.Errorf("cuda: %w: NF4 tensor %v used as a plain operand (MatMul's weight or Copy to F32/BF16 only)", tensor.ErrUnsupported, t)
	}
	return s.p.Add(t.Offset() * t.DType().Size()), nil
}

// ptrs resolves several tensors at once (nil tensors give 0).
func (b *Backend) ptrs(ts ...*tensor.Tensor) ([]cuda.Ptr, error) { return resolve(b.ptr, ts) }

// resolve applies ptr or readPtr to each tensor.
func resolve(ptr func(*tensor.Tensor) (cuda.Ptr, error), ts []*tensor.Tensor) ([]cuda.Ptr, error) {
	out := make([]cuda.Ptr, len(ts))
	for i, t := range ts {
		p, err := ptr(t)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func (b *Backend) ToHost(src *tensor.Tensor, dst any) error {
	defer keep(src)
	if !src.IsContiguous() {
		return fmt.Errorf("cuda: ToHost of a strided view")
	}
	n := src.Numel()
	p, err := b.readPtr(src)
	if err != nil {
		return err
	}
	dt := src.DType()
	if m := b.hostInts(src); m != nil {
		// The host copy: no wait for the GPU.
		switch d := dst.(type) {
		case []int64:
			if dt == tensor.I64 && len(d) == n {
				copy(d, m)
				return nil
			}
		case []int32:
			if dt == tensor.I32 && len(d) == n {
				for i, v := range m {
					d[i] = int32(v)
				}
				return nil
			}
		}
	}
	ok := false
	switch d := dst.(type) {
	case []float32:
		ok = dt == tensor.F32 && len(d) == n
		if ok && n > 0 {
			err = cuda.CopyDtoH(b.dev, d, p)
		}
	case []float64:
		ok = dt == tensor.F64 && len(d) == n
		if ok && n > 0 {
			err = cuda.CopyDtoH(b.dev, d, p)
		}
	case []uint16:
		ok = dt == tensor.BF16 && len(d) == n
		if ok && n > 0 {
			err = cuda.CopyDtoH(b.dev, d, p)
		}
	case []int32:
		ok = dt == tensor.I32 && len(d) == n
		if ok && n > 0 {
			err = cuda.CopyDtoH(b.dev, d, p)
		}
	case []int64:
		ok = dt == tensor.I64 && len(d) == n
		if ok && n > 0 {
			err = cuda.CopyDtoH(b.dev, d, p)
		}
	}
	if !ok && n > 0 {
		return fmt.Errorf("cuda: ToHost %v of %d elements into %T", dt, n, dst)
	}
	if err != nil {
		return fmt.Errorf("cuda: ToHost %v: %w", src, err)
	}
	return nil
}

// keep holds the tensors (and so their storage) reachable until the
// calling method returns: once a method has taken device addresses, Go no
// longer sees them used, and a collected storage's block could be handed to
// the method's own scratch allocation before its kernels were queued.
func keep(ts ...*tensor.Tensor) { runtime.KeepAlive(ts) }

// layout merges the axes of shape walked with the tensors' strides.
func layout(shape tensor.Shape, ts ...*tensor.Tensor) (cuda.Layout, error) {
	st := make([][]int, len(ts))
	for i, t := range ts {
		st[i] = t.Strides()
	}
	l, err := cuda.NewLayout(shape, st...)
	if errors.Is(err, cuda.ErrBadArgument) {
		return l, fmt.Errorf("cuda: %w: %v", tensor.ErrUnsupported, err)
	}
	return l, err
}

// Copy converts and copies any view into any view of the same shape: a
// device copy when both are dense and of one dtype, else the strided
// convert kernel (rank up to 6 after merging contiguous axes). An integer
// copy that fills all of dst's storage from values with a host copy gives
// dst one too (ids.To(I64), labels.Contiguous()).
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	m := b.hostInts(src)
	if err := b.copy(dst, src); err != nil || m == nil {
		return err
	}
	d := dst.Storage().(*storage) // copy checked it
	if !dst.IsContiguous() || dst.Offset() != 0 || dst.Numel() != d.n {
		return nil
	}
	switch dst.DType() {
	case tensor.I64:
		d.mirror(m)
	case tensor.I32:
		narrowed := make([]int32, len(m))
		for i, v := range m {
			if v != int64(int32(v)) {
				return nil // out of range: the device's values are read
			}
			narrowed[i] = int32(v)
		}
		d.mirror(narrowed)
	}
	return nil
}

func (b *Backend) copy(dst, src *tensor.Tensor) error {
	defer keep(dst, src)
	if !dst.Shape().Equal(src.Shape()) {
		return fmt.Errorf("cuda: Copy %v into %v", src.Shape(), dst.Shape())
	}
	if dst.Numel() == 0 {
		return nil
	}
	dk, err := kdt(dst.DType())
	if err != nil {
		return err
	}
	if src.DType() == tensor.NF4 {
		pd, err := b.ptr(dst)
		if err != nil {
			return err
		}
		if !dst.IsContiguous() || (dk != cuda.F32 && dk != cuda.BF16) {
			return fmt.Errorf("cuda: %w: NF4 copied into a strided or %v view (contiguous F32/BF16 only)", tensor.ErrUnsupported, dst.DType())
		}
		return b.dequantNF4(pd, dk, src)
	}
	sk, err := kdt(src.DType())
	if err != nil {
		return err
	}
	pd, err := b.ptr(dst)
	if err != nil {
		return err
	}
	ps, err := b.readPtr(src)
	if err != nil {
		return err
	}
	p := []cuda.Ptr{pd, ps}
	if dk == sk && dst.IsContiguous() && src.IsContiguous() {
		if p[0] == p[1] {
			return nil
		}
		return b.dev.CopyDtoDAsync(b.s, p[0], p[1], dst.Numel()*dst.DType().Size())
	}
	l, err := layout(dst.Shape(), dst, src)
	if err != nil {
		return err
	}
	return b.dev.ConvertStrided(b.s, l, p[0], dk, p[1], sk)
}

func (b *Backend) Fill(dst *tensor.Tensor, v float64) error {
	defer keep(dst)
	if dst.Numel() == 0 {
		return nil
	}
	dk, err := kdt(dst.DType())
	if err != nil {
		return err
	}
	p, err := b.ptr(dst)
	if err != nil {
		return err
	}
	l, err := layout(dst.Shape(), dst)
	if err != nil {
		return err
	}
	return b.dev.FillStrided(b.s, l, p, dk, v)
}

// temp allocates n elements of scratch of type t; release returns it to
// the allocator. Releasing right after queueing the kernels that use it is
// safe: later work that reuses the block is queued behind them.
func (b *Backend) temp(t cuda.DType, n int) (cuda.Ptr, func(), error) {
	if n <= 0 {
		return 0, func() {}, nil
	}
	p, err := b.alloc.Alloc(n * t.Size())
	if err != nil {
		return 0, nil, fmt.Errorf("cuda: scratch of %d x %v: %w", n, t, err)
	}
	return p, func() { _ = b.alloc.Free(p) }, nil
}

// positions returns the int32 sequence 0..n-1 on the device (cached).
func (b *Backend) positions(n int) (cuda.Ptr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.iota.n >= n {
		return b.iota.p, nil
	}
	m := max(n, 2*b.iota.n, 4096)
	v := make([]int32, m)
	for i := range v {
		v[i] = int32(i)
	}
	p, err := b.alloc.Alloc(m * 4)
	if err != nil {
		return 0, err
	}
	if err := cuda.CopyHtoD(b.dev, p, v); err != nil {
		return 0, err
	}
	// The old table may still be read by queued kernels; stream order
	// makes freeing it now safe.
	if b.iota.p != 0 {
		_ = b.alloc.Free(b.iota.p)
	}
	b.iota = devBuf{p, m}
	return p, nil
}

// onesF32 returns n float32 ones on the device (cached).
func (b *Backend) onesF32(n int) (cuda.Ptr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ones.n >= n {
		return b.ones.p, nil
	}
	m := max(n, 2*b.ones.n, 1024)
	p, err := b.alloc.Alloc(m * 4)
	if err != nil {
		return 0, err
	}
	if err := b.dev.Memset32Async(b.s, p, 0x3f800000, m); err != nil {
		return 0, err
	}
	if b.ones.p != 0 {
		_ = b.alloc.Free(b.ones.p)
	}
	b.ones = devBuf{p, m}
	return p, nil
}

var _ tensor.Backend = (*Backend)(nil)
