//go:build cudasim

package cuda

import (
	"errors"
	"strings"
	"testing"
)

// A kernel writing n floats at p, one per thread.
const simTestPTX = `.version 7.8
.target sm_80
.address_size 64
.visible .entry fill(.param .u64 p, .param .u32 off)
{
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	ld.param.u32 %r2, [off];
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	cvt.u64.u32 %rd2, %r2;
	add.s64 %rd3, %rd3, %rd2;
	st.global.u32 [%rd3], %r1;
	ret;
}
`

// TestSimLaunchFaults: the simulated driver maps memcheck faults to the
// CUDA codes, reported when the stream is synchronized, and the error carries the simulator's detail (kernel, PTX
// line, thread, address).
func TestSimLaunchFaults(t *testing.T) {
	g := needGPU(t)
	m, err := g.d.LoadModule("simtest.ptx", simTestPTX)
	g.ok(err)
	defer m.Unload()
	f, err := m.Function("fill")
	g.ok(err)
	p := g.alloc(64 * 4)
	g.ok(f.Launch(g.s, Dim3{1, 1, 1}, Dim3{64, 1, 1}, 0, new(Args).Ptr(p).Int(0)))
	for _, c := range []struct {
		block, off int
		code       int
		detail     string
	}{
		{129, 0, 700, "thread (128,0,0)"}, // the allocator's class is 512 bytes
		{1, 2, 716, "not aligned to 4"},
	} {
		err := f.Launch(g.s, Dim3{1, 1, 1}, Dim3{c.block, 1, 1}, 0, new(Args).Ptr(p).Int(c.off))
		if err == nil {
			// g.s does not run its work until waited for: the fault is
			// reported by the synchronization, as a GPU's asynchronous
			// faults are.
			err = g.d.SyncStream(g.s)
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != c.code {
			t.Fatalf("launch of %d threads at offset %d: %v, want CUresult %d", c.block, c.off, err, c.code)
		}
		for _, s := range []string{"ptxsim: kernel fill", "module:15 (st.global.u32)", c.detail} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
	}
}

// TestSimCaptureRefusesSync: synchronizing a stream during its capture fails
// as on CUDA, and invalidates the capture.
func TestSimCaptureRefusesSync(t *testing.T) {
	g := needGPU(t)
	g.ok(g.d.BeginCapture(g.s))
	if err := g.d.SyncStream(g.s); err == nil {
		t.Error("cuStreamSynchronize during capture succeeded")
	}
	if _, err := g.d.EndCapture(g.s); err == nil {
		t.Error("EndCapture of an invalidated capture succeeded")
	}
	if err := g.d.Synchronize(); err != nil {
		t.Errorf("after the capture: %v", err)
	}
}

// TestSimStreamsRunLate: a non-blocking stream's work runs only when
// something waits for it, and then only up to what is waited for, so
// work that lacks a WaitEvent reads or writes at the wrong time on the
// simulated device instead of only sometimes on a GPU.
func TestSimStreamsRunLate(t *testing.T) {
	g := needGPU(t)
	read := func(p Ptr) uint32 {
		t.Helper()
		v := make([]uint32, 1)
		g.ok(CopyDtoH(g.d, v, p))
		return v[0]
	}
	x, y := g.alloc(4), g.alloc(4)
	e, err := g.d.NewSyncEvent()
	g.ok(err)
	defer g.d.DestroyEvent(e)

	// No wait: the legacy stream's later write is overwritten when the
	// copy stream finally runs.
	g.ok(g.d.Memset32Async(g.s, x, 7, 1))
	g.ok(g.d.Memset32(x, 1, 1))
	if v := read(x); v != 1 {
		t.Fatalf("the legacy stream's write: %d, want 1 (the other stream has not run)", v)
	}
	g.sync()
	if v := read(x); v != 7 {
		t.Errorf("after the stream synchronized: %d, want 7", v)
	}

	// A wait orders them: the legacy stream's write lands last.
	g.ok(g.d.Memset32Async(g.s, x, 7, 1))
	g.ok(g.d.Record(e, g.s))
	if done, err := g.d.EventDone(e); err != nil || done {
		t.Errorf("EventDone before anything waited: %v, %v", done, err)
	}
	g.ok(g.d.WaitEvent(Stream{}, e))
	if done, err := g.d.EventDone(e); err != nil || !done {
		t.Errorf("EventDone after the legacy stream waited: %v, %v", done, err)
	}
	g.ok(g.d.Memset32(x, 1, 1))
	g.sync()
	if v := read(x); v != 1 {
		t.Errorf("with WaitEvent: %d, want 1", v)
	}

	// Between two lazy streams a wait runs the other stream up to the
	// event's record and no further.
	other, err := g.d.NewStream()
	g.ok(err)
	defer g.d.DestroyStream(other)
	g.ok(g.d.Memset32Async(g.s, x, 2, 1))
	g.ok(g.d.Record(e, g.s))
	g.ok(g.d.Memset32Async(g.s, x, 3, 1))
	g.ok(g.d.WaitEvent(other, e))
	g.ok(g.d.CopyDtoDAsync(other, y, x, 4))
	g.ok(g.d.SyncStream(other))
	if v := read(y); v != 2 {
		t.Errorf("copied after the wait: %d, want 2 (the write after the record has not run)", v)
	}
	g.ok(g.d.SyncEvent(e))
	if v := read(x); v != 2 {
		t.Errorf("after SyncEvent: %d, want 2", v)
	}
	g.ok(g.d.Synchronize())
	if v := read(x); v != 3 {
		t.Errorf("after the device synchronized: %d, want 3", v)
	}
}

// Only the calls that make the host wait add to HostWaitTime.
func TestHostWaitTime(t *testing.T) {
	for _, name := range []string{"cuLaunchKernel", "cuMemcpyHtoDAsync", "cuMemcpyDtoHAsync", "cuEventRecord", "cuEventQuery", "cuMemAlloc"} {
		if hostWait(name) {
			t.Errorf("%s does not make the host wait, yet hostWait times it", name)
		}
	}
	g := needGPU(t)
	before := g.d.HostWaitTime()
	g.ok(g.d.Synchronize())
	if g.d.HostWaitTime() <= before {
		t.Errorf("a synchronization added no wait time (%v, then %v)", before, g.d.HostWaitTime())
	}
}
