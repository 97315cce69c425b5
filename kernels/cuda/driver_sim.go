//go:build cudasim

package cuda

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ftune/ftune/kernels/cuda/ptxsim"
)

// The simulated driver (-tags cudasim): every driver function is a Go
// function over ptxsim, which interprets the kernels' PTX on the CPU. Device
// memory is Go memory (the device pointer is its address); the legacy
// default stream and blocking streams run their work at once, in order;
// non-blocking streams (the ones NewStream makes) queue it and run it as
// late as the program's synchronization allows (simStream); events record
// wall time when they run; stream capture records work into a graph that
// cuGraphLaunch replays.

// Simulated reports whether the driver is ptxsim's (-tags cudasim): true
// here.
const Simulated = true

// SetSimulatedDeviceWork turns the simulated device's work on or off (off:
// launches, memsets and copies are checked and queued but never run, as
// with FTUNE_CUDASIM_KERNELS=skip) for the work that runs from now on, so
// synchronize before turning it back on. It returns the setting it
// replaces. Only the simulated driver has it: tests that size a
// full-scale step use it between tests that need results.
func SetSimulatedDeviceWork(run bool) (was bool) {
	return !sim.skipDeviceWork.Swap(!run)
}

// CUresult codes the simulator returns.
const (
	simSuccess             = 0
	simInvalidValue        = 1
	simOutOfMemory         = 2
	simInvalidPTX          = 218
	simInvalidHandle       = 400
	simNotFound            = 500
	simIllegalAddress      = 700
	simLaunchTimeout       = 702
	simMisaligned          = 716
	simLaunchFailed        = 719
	simCaptureUnsupported  = 900
	simCaptureInvalidated  = 901
	simCaptureUnmatched    = 904
	simNotReady            = errNotReady
	simSharedPerBlock      = 48 << 10
	simSharedOptin         = 227 << 10
	simSharedPerSM         = 228 << 10
	simSMs                 = 108
	simDefaultMemory       = 8 << 30
	simDriverVersion       = 12080
	simDeviceName          = "ptxsim simulated sm_80 (CPU)"
	simRegistersReportedAs = 0 // ptxsim has no register allocator: cuFuncGetAttribute reports 0 registers
)

var simErrorNames = map[int32]string{
	0: "CUDA_SUCCESS", 1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
	3: "CUDA_ERROR_NOT_INITIALIZED", 100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
	218: "CUDA_ERROR_INVALID_PTX", 400: "CUDA_ERROR_INVALID_HANDLE", 500: "CUDA_ERROR_NOT_FOUND",
	700: "CUDA_ERROR_ILLEGAL_ADDRESS", 702: "CUDA_ERROR_LAUNCH_TIMEOUT", 716: "CUDA_ERROR_MISALIGNED_ADDRESS",
	719: "CUDA_ERROR_LAUNCH_FAILED", 600: "CUDA_ERROR_NOT_READY", 900: "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
	901: "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", 904: "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED",
}

// simAlloc is one device allocation: mem is 256-byte aligned inside buf.
type simAlloc struct {
	base uint64
	mem  []byte
}

// simStream is a stream. A non-blocking stream (lazy) runs nothing when
// work is queued: its queue runs when the host waits for it (stream, event
// or context synchronization, an event query reports it not ready) or when
// another stream's work waits for one of its events, and then only up to
// that point. Everything else on the simulated device has already run by
// then, so work missing a cuStreamWaitEvent sees what a real GPU would show
// only sometimes: a copy reading a block that later work wrote over, a
// kernel reading what a copy has not written yet.
type simStream struct {
	capturing   bool
	invalidated bool
	graph       *simGraph
	lazy        bool
	queue       []func() int32 // queued and not run (lazy only)
	queued      uint64         // ops ever queued (lazy only)
	done        uint64         // ops run, in order (lazy only)
	err         int32          // the first failure of a queued op, reported by the next synchronization
}

// simEvent is an event: its latest record is op seq of stream (0: it had
// run when recorded); at is when it ran.
type simEvent struct {
	at     time.Time
	stream uintptr
	seq    uint64
}

type simGraph struct{ ops []func() int32 }

type simFunc struct {
	k      *ptxsim.Kernel
	maxDyn int
}

// simDriver is the simulated device's state.
type simDriver struct {
	mu      sync.RWMutex
	allocs  atomic.Pointer[[]simAlloc] // sorted by base; replaced, never changed, so Find needs no lock
	used    uint64
	total   uint64
	host    map[unsafe.Pointer][]byte
	handles uintptr
	modules map[uintptr]*ptxsim.Module
	// modCache keeps parsed modules by PTX text for later loads (moduleLoad).
	modCache simModuleCache
	funcs    map[uintptr]*simFunc
	streams  map[uintptr]*simStream
	events   map[uintptr]*simEvent
	// order orders the lazy streams' queues: it is held while queued work
	// runs, and while queues change.
	order  sync.Mutex
	graphs map[uintptr]*simGraph
	names  map[string][]byte // C strings handed out by cuGetErrorName
	detail map[int32]string  // the last failure's detail per code, for cuGetErrorName
	budget int64             // instructions per launch (FTUNE_CUDASIM_BUDGET; 0: ptxsim's default)
	// racecheck turns on ptxsim's shared-memory racecheck (FTUNE_CUDASIM_RACECHECK=1).
	racecheck bool
	// skipDeviceWork (FTUNE_CUDASIM_KERNELS=skip) checks and queues
	// launches, memsets and copies but runs none: results are garbage,
	// device memory is never touched (so never resident), and what is left
	// of a program's time is its host side (gpubench -host-only).
	skipDeviceWork atomic.Bool
}

var sim = &simDriver{
	host: map[unsafe.Pointer][]byte{}, modules: map[uintptr]*ptxsim.Module{}, funcs: map[uintptr]*simFunc{},
	streams: map[uintptr]*simStream{0: {}}, events: map[uintptr]*simEvent{}, graphs: map[uintptr]*simGraph{},
	names: map[string][]byte{}, detail: map[int32]string{},
}

// bindDriver binds every driver function to the simulator.
func bindDriver(syms []symbol) error {
	sim.total = simDefaultMemory
	if s := os.Getenv("FTUNE_CUDASIM_MEMORY"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("cuda: simulated device: FTUNE_CUDASIM_MEMORY=%q: want a byte count", s)
		}
		sim.total = n
	}
	switch s := os.Getenv("FTUNE_CUDASIM_RACECHECK"); s {
	case "", "0":
	case "1":
		sim.racecheck = true
	default:
		return fmt.Errorf("cuda: simulated device: FTUNE_CUDASIM_RACECHECK=%q: want 1 or 0", s)
	}
	switch s := os.Getenv("FTUNE_CUDASIM_KERNELS"); s {
	case "", "run":
	case "skip":
		sim.skipDeviceWork.Store(true)
	default:
		return fmt.Errorf("cuda: simulated device: FTUNE_CUDASIM_KERNELS=%q: want run or skip", s)
	}
	if s := os.Getenv("FTUNE_CUDASIM_BUDGET"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("cuda: simulated device: FTUNE_CUDASIM_BUDGET=%q: want a positive instruction count per launch", s)
		}
		sim.budget = n
	}
	cuInit = func(uint32) int32 { return 0 }
	cuDriverGetVersion = func(v *int32) int32 { *v = simDriverVersion; return 0 }
	cuGetErrorName = sim.errorName
	cuDeviceGetCount = func(n *int32) int32 { *n = 1; return 0 }
	cuDeviceGet = func(dev *int32, ordinal int32) int32 {
		if ordinal != 0 {
			return 101
		}
		*dev = 0
		return 0
	}
	cuDeviceGetName = func(name *byte, n int32, dev int32) int32 {
		b := unsafe.Slice(name, n)
		k := copy(b[:n-1], simDeviceName)
		b[k] = 0
		return 0
	}
	cuDeviceGetAttribute = simAttribute
	cuDeviceTotalMem = func(b *uint64, dev int32) int32 { *b = sim.total; return 0 }
	cuDevicePrimaryCtxRetain = func(ctx *uintptr, dev int32) int32 { *ctx = 1; return 0 }
	cuDevicePrimaryCtxRelease = func(int32) int32 { return 0 }
	cuCtxSetCurrent = func(uintptr) int32 { return 0 }
	cuCtxSynchronize = func() int32 {
		if sim.anyCapturing() {
			return simCaptureUnsupported
		}
		return sim.drainAll()
	}
	cuMemGetInfo = func(free, total *uint64) int32 {
		sim.mu.RLock()
		defer sim.mu.RUnlock()
		*free, *total = sim.total-sim.used, sim.total
		return 0
	}
	cuMemAlloc = sim.memAlloc
	// cuMemFree and cuMemFreeHost synchronize the device first, as the
	// driver does.
	cuMemFree = func(p uint64) int32 {
		if rc := sim.drainAll(); rc != 0 {
			return rc
		}
		return sim.memFree(p)
	}
	cuMemHostAlloc = func(p *unsafe.Pointer, n uint64, flags uint32) int32 {
		if n == 0 {
			return simInvalidValue
		}
		buf := make([]byte, n)
		sim.mu.Lock()
		defer sim.mu.Unlock()
		*p = unsafe.Pointer(&buf[0])
		sim.host[*p] = buf
		return 0
	}
	cuMemFreeHost = func(p unsafe.Pointer) int32 {
		if rc := sim.drainAll(); rc != 0 {
			return rc
		}
		sim.mu.Lock()
		defer sim.mu.Unlock()
		if sim.host[p] == nil {
			return simInvalidValue
		}
		delete(sim.host, p)
		return 0
	}
	cuMemcpyHtoD = func(dst uint64, src unsafe.Pointer, n uint64) int32 {
		return sim.copyHtoD(dst, src, n)
	}
	cuMemcpyDtoH = func(dst unsafe.Pointer, src uint64, n uint64) int32 {
		return sim.copyDtoH(dst, src, n)
	}
	cuMemcpyDtoD = func(dst, src uint64, n uint64) int32 { return sim.copyDtoD(dst, src, n) }
	cuMemcpyHtoDAsync = func(dst uint64, src unsafe.Pointer, n uint64, s uintptr) int32 {
		if n == 0 {
			return 0
		}
		// From pinned memory the copy reads the host bytes when it runs,
		// as the DMA engine does, so a buffer refilled before its copy has
		// run shows in the tests; pageable memory is staged now, as the
		// driver stages it.
		if sim.pinned(src, n) {
			return sim.enqueue(s, func() int32 { return sim.copyHtoD(dst, src, n) })
		}
		staged := append([]byte(nil), unsafe.Slice((*byte)(src), n)...)
		return sim.enqueue(s, func() int32 { return sim.copyHtoD(dst, unsafe.Pointer(&staged[0]), n) })
	}
	cuMemcpyDtoHAsync = func(dst unsafe.Pointer, src uint64, n uint64, s uintptr) int32 {
		return sim.enqueue(s, func() int32 { return sim.copyDtoH(dst, src, n) })
	}
	cuMemcpyDtoDAsync = func(dst, src uint64, n uint64, s uintptr) int32 {
		return sim.enqueue(s, func() int32 { return sim.copyDtoD(dst, src, n) })
	}
	cuMemsetD8 = func(dst uint64, v uint8, n uint64) int32 { return sim.memset(dst, uint32(v), 1, n) }
	cuMemsetD32 = func(dst uint64, v uint32, n uint64) int32 { return sim.memset(dst, v, 4, n) }
	cuMemsetD8Async = func(dst uint64, v uint8, n uint64, s uintptr) int32 {
		return sim.enqueue(s, func() int32 { return sim.memset(dst, uint32(v), 1, n) })
	}
	cuMemsetD32Async = func(dst uint64, v uint32, n uint64, s uintptr) int32 {
		return sim.enqueue(s, func() int32 { return sim.memset(dst, v, 4, n) })
	}
	cuStreamCreate = func(s *uintptr, flags uint32) int32 {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		*s = sim.handle()
		sim.streams[*s] = &simStream{lazy: flags&1 != 0}
		return 0
	}
	cuStreamDestroy = func(s uintptr) int32 {
		// The driver runs the queued work to its end after the call.
		if st := sim.stream(s); st != nil {
			sim.drain(st, ^uint64(0))
		}
		sim.mu.Lock()
		defer sim.mu.Unlock()
		if _, ok := sim.streams[s]; !ok || s == 0 {
			return simInvalidHandle
		}
		delete(sim.streams, s)
		return 0
	}
	cuStreamSynchronize = func(s uintptr) int32 {
		st := sim.stream(s)
		if st == nil {
			return simInvalidHandle
		}
		if st.capturing {
			st.invalidated = true
			return simCaptureUnsupported
		}
		return sim.drain(st, ^uint64(0))
	}
	cuStreamWaitEvent = func(s, e uintptr, flags uint32) int32 {
		st, ev := sim.stream(s), sim.event(e)
		if st == nil || ev == nil || flags != 0 {
			return simInvalidHandle
		}
		// The wait is for the event's latest record at the time of the
		// call, as the driver's.
		sim.order.Lock()
		from, seq := sim.streams[ev.stream], ev.seq
		sim.order.Unlock()
		if from == nil || seq == 0 {
			return 0 // never recorded, or recorded on a stream that ran it at once
		}
		return sim.enqueue(s, func() int32 { return sim.drainLocked(from, seq) })
	}
	cuEventQuery = func(e uintptr) int32 {
		ev := sim.event(e)
		if ev == nil {
			return simInvalidHandle
		}
		sim.order.Lock()
		defer sim.order.Unlock()
		if from := sim.streams[ev.stream]; from != nil && from.done < ev.seq {
			return simNotReady
		}
		return 0
	}
	cuEventCreate = func(e *uintptr, flags uint32) int32 {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		*e = sim.handle()
		sim.events[*e] = &simEvent{}
		return 0
	}
	cuEventDestroy = func(e uintptr) int32 {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		delete(sim.events, e)
		return 0
	}
	cuEventRecord = func(e, s uintptr) int32 {
		ev, st := sim.event(e), sim.stream(s)
		if ev == nil || st == nil {
			return simInvalidHandle
		}
		record := func() int32 {
			sim.mu.Lock()
			defer sim.mu.Unlock()
			ev.at = time.Now()
			return 0
		}
		sim.order.Lock()
		if st.lazy && !st.capturing {
			ev.stream, ev.seq = s, st.queued+1 // the record is the next op queued
		} else {
			ev.stream, ev.seq = 0, 0
		}
		sim.order.Unlock()
		return sim.enqueue(s, record)
	}
	cuEventSynchronize = func(e uintptr) int32 {
		ev := sim.event(e)
		if ev == nil {
			return simInvalidHandle
		}
		sim.order.Lock()
		from, seq := sim.streams[ev.stream], ev.seq
		sim.order.Unlock()
		if from == nil || seq == 0 {
			return 0
		}
		return sim.drain(from, seq)
	}
	cuEventElapsedTime = func(ms *float32, start, end uintptr) int32 {
		sim.mu.RLock()
		defer sim.mu.RUnlock()
		a, b := sim.events[start], sim.events[end]
		if a == nil || b == nil || a.at.IsZero() || b.at.IsZero() {
			return simInvalidHandle
		}
		*ms = float32(b.at.Sub(a.at).Seconds() * 1000)
		return 0
	}
	cuModuleLoadDataEx = sim.moduleLoad
	cuModuleUnload = func(m uintptr) int32 {
		sim.mu.Lock()
		mod := sim.modules[m]
		delete(sim.modules, m)
		sim.mu.Unlock()
		if mod != nil {
			sim.releaseModule(mod)
		}
		return 0
	}
	cuModuleGetFunction = sim.getFunction
	cuFuncGetAttribute = sim.funcAttribute
	cuFuncSetAttribute = func(f uintptr, attr int32, v int32) int32 {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		fn := sim.funcs[f]
		if fn == nil {
			return simInvalidHandle
		}
		if attr != funcAttrMaxDynamicSmem || v < 0 || int(v)+fn.k.StaticShared() > simSharedOptin {
			return simInvalidValue
		}
		fn.maxDyn = int(v)
		return 0
	}
	cuLaunchKernel = sim.launch
	cuStreamBeginCapture = func(s uintptr, mode int32) int32 {
		st := sim.stream(s)
		if st == nil || s == 0 {
			return simInvalidHandle
		}
		if st.capturing {
			return simInvalidValue
		}
		st.capturing, st.invalidated, st.graph = true, false, &simGraph{}
		return 0
	}
	cuStreamEndCapture = func(s uintptr, g *uintptr) int32 {
		st := sim.stream(s)
		if st == nil {
			return simInvalidHandle
		}
		if !st.capturing {
			return simInvalidValue
		}
		st.capturing = false
		if st.invalidated {
			return simCaptureInvalidated
		}
		sim.mu.Lock()
		defer sim.mu.Unlock()
		*g = sim.handle()
		sim.graphs[*g] = st.graph
		return 0
	}
	cuGraphInstantiateWithFlags = func(e *uintptr, g uintptr, flags uint64) int32 {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		gr := sim.graphs[g]
		if gr == nil {
			return simInvalidHandle
		}
		*e = sim.handle()
		sim.graphs[*e] = gr
		return 0
	}
	cuGraphLaunch = func(e, s uintptr) int32 {
		sim.mu.RLock()
		gr := sim.graphs[e]
		sim.mu.RUnlock()
		if gr == nil {
			return simInvalidHandle
		}
		return sim.enqueue(s, func() int32 {
			for _, op := range gr.ops {
				if rc := op(); rc != 0 {
					return rc
				}
			}
			return 0
		})
	}
	cuGraphExecDestroy = sim.dropGraph
	cuGraphDestroy = sim.dropGraph
	cuOccupancyMaxActiveBlocksPerMultiprocessor = func(n *int32, f uintptr, block int32, smem uint64) int32 {
		sim.mu.RLock()
		fn := sim.funcs[f]
		sim.mu.RUnlock()
		if fn == nil || block <= 0 {
			return simInvalidValue
		}
		blocks := min(2048/int(block), 32)
		if per := int(smem) + fn.k.StaticShared(); per > 0 {
			blocks = min(blocks, simSharedPerSM/(per+1024))
		}
		*n = int32(max(blocks, 0))
		return 0
	}
	cuTensorMapEncodeTiled = func(m *TensorMap, dtype int32, rank uint32, addr uint64, dims, strides *uint64, box, elemStrides *uint32, interleave, swizzle, l2, oob int32) int32 {
		// The maps ftune encodes (tensormap.go): bf16, rank 2, unit element
		// strides, no interleave, zero fill; the simulator's own encoding.
		es := unsafe.Slice(elemStrides, 2)
		if dtype != tensorMapBFloat16 || rank != 2 || interleave != 0 || oob != 0 || es[0] != 1 || es[1] != 1 {
			sim.setDetail(simInvalidValue, fmt.Sprintf("ptxsim: cuTensorMapEncodeTiled: type %d rank %d interleave %d oob fill %d element strides %v not simulated", dtype, rank, interleave, oob, es))
			return simInvalidValue
		}
		dm, bx := unsafe.Slice(dims, 2), unsafe.Slice(box, 2)
		enc, err := ptxsim.EncodeTensorMap(ptxsim.TensorMap2D{Addr: addr, ElemBytes: 2, Dims: [2]uint64{dm[0], dm[1]},
			RowStride: *strides, Box: [2]uint32{bx[0], bx[1]}, Swizzle: int(swizzle)})
		if err != nil {
			sim.setDetail(simInvalidValue, "ptxsim: cuTensorMapEncodeTiled: "+err.Error())
			return simInvalidValue
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(m)), len(enc)), enc[:])
		return 0
	}
	for _, s := range syms {
		if s.fn == nil {
			return fmt.Errorf("cuda: simulated device: %s not bound", s.name)
		}
	}
	return nil
}

func init() {
	simNote = "cuda: simulated device (ptxsim, -tags cudasim): kernels interpreted on the CPU, no GPU"
}

func simAttribute(v *int32, attr int32, dev int32) int32 {
	vals := map[int32]int32{
		attrMaxThreadsPerBlock: 1024, attrMaxSharedPerBlock: simSharedPerBlock, attrClockRateKHz: 1410000,
		attrMultiprocessorCount: simSMs, attrMemoryClockRateKHz: 1215000, attrGlobalMemoryBusWidth: 5120,
		attrL2CacheSize: 40 << 20, attrComputeCapMajor: 8, attrComputeCapMinor: 0, attrMaxSharedOptin: simSharedOptin,
	}
	*v = vals[attr]
	return 0
}

func (s *simDriver) handle() uintptr {
	s.handles++
	return s.handles + 0x1000
}

func (s *simDriver) stream(h uintptr) *simStream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[h]
}

func (s *simDriver) anyCapturing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, st := range s.streams {
		if st.capturing {
			return true
		}
	}
	return false
}

func (s *simDriver) event(h uintptr) *simEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.events[h]
}

// enqueue records op when the stream is being captured, queues it on a
// lazy stream, and runs it now on the others.
func (s *simDriver) enqueue(h uintptr, op func() int32) int32 {
	st := s.stream(h)
	if st == nil {
		return simInvalidHandle
	}
	if st.capturing {
		st.graph.ops = append(st.graph.ops, op)
		return 0
	}
	if !st.lazy {
		// Under run: an op that waits for a lazy stream runs its queue.
		s.order.Lock()
		defer s.order.Unlock()
		return op()
	}
	s.order.Lock()
	defer s.order.Unlock()
	if st.err != 0 {
		return st.err // a failed op's error, as the driver reports it on later calls
	}
	st.queue = append(st.queue, op)
	st.queued++
	return 0
}

// drain runs st's queued ops up to op seq (1-based; ^0: all of them) and
// returns the first failure of any op st ran since its last report.
func (s *simDriver) drain(st *simStream, seq uint64) int32 {
	s.order.Lock()
	defer s.order.Unlock()
	return s.drainLocked(st, seq)
}

func (s *simDriver) drainLocked(st *simStream, seq uint64) int32 {
	for st.done < seq && len(st.queue) > 0 {
		op := st.queue[0]
		st.queue = st.queue[1:]
		st.done++
		if rc := op(); rc != 0 && st.err == 0 {
			st.err = rc
		}
	}
	rc := st.err
	st.err = 0
	return rc
}

// drainAll runs every lazy stream's queue (a device synchronization).
func (s *simDriver) drainAll() int32 {
	s.mu.RLock()
	var all []*simStream
	for _, st := range s.streams {
		if st.lazy {
			all = append(all, st)
		}
	}
	s.mu.RUnlock()
	var first int32
	for _, st := range all {
		if rc := s.drain(st, ^uint64(0)); rc != 0 && first == 0 {
			first = rc
		}
	}
	return first
}

func (s *simDriver) dropGraph(g uintptr) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.graphs, g)
	return 0
}

// errorName returns the code's name; after a failed launch or module load
// the name carries the simulator's detail (once), so that the *Error built
// by check says which kernel, PTX line, thread and address failed.
func (s *simDriver) errorName(code int32, p *unsafe.Pointer) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := simErrorNames[code]
	if !ok {
		return simInvalidValue
	}
	if d := s.detail[code]; d != "" {
		name += " [" + d + "]"
		delete(s.detail, code)
	}
	b := s.names[name]
	if b == nil {
		b = append([]byte(name), 0)
		s.names[name] = b
	}
	*p = unsafe.Pointer(&b[0])
	return 0
}

func (s *simDriver) setDetail(code int32, d string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detail[code] = d
}

// bindLt: cuBLASLt is a real-GPU library; handed the simulator's device
// pointers (Go memory) it would crash, so under -tags cudasim it is never
// opened, even where it is installed.
func bindLt(path string) error {
	return fmt.Errorf("%s: not opened: cuBLASLt needs a real GPU and this device is simulated (ptxsim, -tags cudasim)", path)
}
