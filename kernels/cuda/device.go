package cuda

import (
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Device attribute numbers (CUdevice_attribute).
const (
	attrMaxThreadsPerBlock   = 1
	attrMaxSharedPerBlock    = 8
	attrClockRateKHz         = 13
	attrMultiprocessorCount  = 16
	attrMemoryClockRateKHz   = 36
	attrGlobalMemoryBusWidth = 37
	attrL2CacheSize          = 38
	attrComputeCapMajor      = 75
	attrComputeCapMinor      = 76
	attrMaxSharedOptin       = 97
)

// Device is one GPU with its primary context. Its methods may be called from
// any goroutine: each driver call pins the goroutine to its OS thread and makes
// the context current there first, because CUDA's current context is
// per-thread and Go moves goroutines between threads.
type Device struct {
	Ordinal      int
	Name         string
	Major, Minor int   // compute capability
	SMs          int   // multiprocessors
	TotalMem     int64 // bytes
	L2Bytes      int
	SharedOptin  int // largest dynamic shared memory a block may opt into
	ClockKHz     int
	MemClockKHz  int
	MemBusBits   int

	dev    int32
	ctx    uintptr
	mu     sync.Mutex
	closed bool
	alloc  *Allocator
	kern   *kernels

	callsMu sync.Mutex
	calls   map[string]int64 // driver calls made, by name (CallCounts)
	// launches counts the kernels launched, by name (Launches).
	launches map[string]int64

	waited    atomic.Int64 // nanoseconds in HostWaitCalls (HostWaitTime)
	unsplit   atomic.Int64 // products run unsplit for want of scratch (UnsplitProducts)
	stageOnce sync.Once
	stager    *Stager // uploads queued on the legacy default stream (QueueHtoD)
	stageErr  error
}

var (
	devMu   sync.Mutex
	devices = map[int]*Device{}
)

// Open returns device ordinal with its primary context retained. Devices are
// shared: Open twice gives the same *Device.
func Open(ordinal int) (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= numDevices {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d found)", ordinal, numDevices)
	}
	devMu.Lock()
	defer devMu.Unlock()
	if d := devices[ordinal]; d != nil && !d.closed {
		return d, nil
	}
	d := &Device{Ordinal: ordinal}
	if err := check("cuDeviceGet", cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := check("cuDeviceGetName", cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return nil, err
	}
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	d.Name = string(name)
	attrs := []struct {
		dst  *int
		attr int32
	}{
		{&d.Major, attrComputeCapMajor}, {&d.Minor, attrComputeCapMinor},
		{&d.SMs, attrMultiprocessorCount}, {&d.L2Bytes, attrL2CacheSize},
		{&d.SharedOptin, attrMaxSharedOptin}, {&d.ClockKHz, attrClockRateKHz},
		{&d.MemClockKHz, attrMemoryClockRateKHz}, {&d.MemBusBits, attrGlobalMemoryBusWidth},
	}
	for _, a := range attrs {
		var v int32
		if err := check("cuDeviceGetAttribute", cuDeviceGetAttribute(&v, a.attr, d.dev)); err != nil {
			return nil, err
		}
		*a.dst = int(v)
	}
	var total uint64
	if err := check("cuDeviceTotalMem", cuDeviceTotalMem(&total, d.dev)); err != nil {
		return nil, err
	}
	d.TotalMem = int64(total)
	if d.Major < 8 {
		return nil, fmt.Errorf("cuda: device %d (%s) has compute capability %d.%d; ftune's kernels need 8.0 (Ampere) or newer", ordinal, d.Name, d.Major, d.Minor)
	}
	if err := check("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	d.alloc = newAllocator(d)
	devices[ordinal] = d
	return d, nil
}

// String describes the device in one line.
func (d *Device) String() string {
	return fmt.Sprintf("%s (cc %d.%d, %d SMs, %.1f GiB)", d.Name, d.Major, d.Minor, d.SMs, float64(d.TotalMem)/(1<<30))
}

// enter pins the goroutine to its thread and makes the context current;
// every driver call is bracketed by enter/exit.
func (d *Device) enter() error {
	runtime.LockOSThread()
	if err := check("cuCtxSetCurrent", cuCtxSetCurrent(d.ctx)); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	return nil
}

func (d *Device) exit() { runtime.UnlockOSThread() }

// call runs one driver call with the context current.
func (d *Device) call(name string, f func() int32) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.exit()
	d.callsMu.Lock()
	if d.calls == nil {
		d.calls = map[string]int64{}
	}
	d.calls[name]++
	d.callsMu.Unlock()
	if !hostWait(name) {
		return check(name, f())
	}
	t0 := time.Now()
	rc := f()
	d.waited.Add(int64(time.Since(t0)))
	return check(name, rc)
}

// HostWaitTime is the time the host has spent in HostWaitCalls so far:
// blocked until the GPU finished the work queued before them. Over a
// training step, close to zero means the GPU ran out of work before the
// host asked for its result (the host is the bottleneck); close to the
// step's time means the host had queued the step long before the GPU
// finished it.
func (d *Device) HostWaitTime() time.Duration { return time.Duration(d.waited.Load()) }

// hostWait reports whether name is one of HostWaitCalls.
func hostWait(name string) bool { return hostWaitSet[name] }

var hostWaitSet = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range HostWaitCalls {
		m[name] = true
	}
	return m
}()

// CallCounts returns how many times each driver call was made through this
// device so far. Tests diff two snapshots to count, for example, the calls
// that make the host wait for the GPU (HostWaits) in a training step.
func (d *Device) CallCounts() map[string]int64 {
	d.callsMu.Lock()
	defer d.callsMu.Unlock()
	return cloneCounts(d.calls)
}

// Launches returns how many times each kernel was launched on this device
// so far: which kernels a product or a step ran (the fused LoRA GEMM, the
// wgmma one), for tests and benchmark rows.
func (d *Device) Launches() map[string]int64 {
	d.callsMu.Lock()
	defer d.callsMu.Unlock()
	return cloneCounts(d.launches)
}

// cloneCounts copies a count map (never nil: callers add their own keys).
func cloneCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	maps.Copy(out, m)
	return out
}

// Synchronize waits for all work on the device.
func (d *Device) Synchronize() error {
	return d.call("cuCtxSynchronize", cuCtxSynchronize)
}

// MemInfo returns the free and total device memory in bytes.
func (d *Device) MemInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.call("cuMemGetInfo", func() int32 { return cuMemGetInfo(&f, &t) })
	return int64(f), int64(t), err
}

// Allocator returns the device's caching allocator.
func (d *Device) Allocator() *Allocator { return d.alloc }

// Close releases cached memory, modules and the primary context.
func (d *Device) Close() error {
	devMu.Lock()
	defer devMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.stager != nil {
		if err := d.stager.Close(); err != nil {
			return err
		}
	}
	delete(devices, d.Ordinal)
	err := d.alloc.Trim()
	if d.kern != nil {
		if e := d.kern.unload(); err == nil {
			err = e
		}
	}
	if e := check("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(d.dev)); err == nil {
		err = e
	}
	return err
}

// HostWaitCalls are the driver calls after which the host has waited for
// the work queued before them: a synchronous copy to the host, a
// synchronous copy from pageable memory (the driver first synchronizes the
// stream), a synchronization, and the frees (which synchronize the
// device).
var HostWaitCalls = []string{"cuMemcpyDtoH", "cuMemcpyHtoD", "cuCtxSynchronize", "cuStreamSynchronize", "cuEventSynchronize", "cuMemFree", "cuMemFreeHost"}

// HostWaits counts the HostWaitCalls made between two CallCounts
// snapshots, by name (calls not made are left out).
func HostWaits(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for _, name := range HostWaitCalls {
		if n := after[name] - before[name]; n != 0 {
			out[name] = n
		}
	}
	return out
}
