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
// CUDA codes and the error carries the simulator's detail (kernel, PTX
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
