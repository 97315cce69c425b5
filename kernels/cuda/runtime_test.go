package cuda

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestAvailableNeverPanics(t *testing.T) {
	ok, reason := Available()
	if reason == "" || strings.Contains(reason, "\n") {
		t.Fatalf("Available() reason %q: want one non-empty line", reason)
	}
	t.Logf("Available() = %v: %s", ok, reason)
	if !ok {
		if _, err := Open(0); err == nil {
			t.Fatal("Open succeeded although Available said no")
		}
	}
}

func TestDeviceInfo(t *testing.T) {
	g := needGPU(t)
	d := g.d
	if d.Major < 8 || d.SMs <= 0 || d.TotalMem <= 0 || d.SharedOptin < 48<<10 || d.Name == "" {
		t.Fatalf("implausible device attributes: %+v", d)
	}
	free, total, err := d.MemInfo()
	g.ok(err)
	if free <= 0 || total < free {
		t.Fatalf("MemInfo free=%d total=%d", free, total)
	}
	v, _ := DriverVersion()
	t.Logf("%s, driver CUDA %d, L2 %d KB, smem optin %d KB", d, v, d.L2Bytes>>10, d.SharedOptin>>10)
}

func TestMemoryCopies(t *testing.T) {
	g := needGPU(t)
	const n = 100003 // odd size: no multiple of any vector width
	src := g.randn(n, 1, F32)
	a := g.up(src, F32)
	b := g.alloc(n * 4)
	g.ok(g.d.CopyDtoD(b, a, n*4))
	compare(t, "CopyHtoD/DtoD/DtoH", g.down(b, n, F32), f64s(src), nil, tol{})

	// Async through pinned memory on a stream.
	h, err := g.d.HostAlloc(n * 4)
	g.ok(err)
	defer h.Free()
	hs := HostSlice[float32](h)
	copy(hs, src)
	c := g.alloc(n * 4)
	g.ok(CopyHtoDAsync(g.d, g.s, c, hs))
	e := g.alloc(n * 4)
	g.ok(g.d.CopyDtoDAsync(g.s, e, c, n*4))
	// The copy from pinned memory reads it when it runs: wait before
	// reusing the buffer.
	g.sync()
	clear(hs)
	g.ok(CopyDtoHAsync(g.d, g.s, hs, e))
	g.sync()
	compare(t, "CopyAsync pinned", hs, f64s(src), nil, tol{})

	// Memsets, sync and async.
	g.ok(g.d.Memset32(c, math.Float32bits(2.5), n))
	g.ok(g.d.Memset8Async(g.s, e, 0, n*4))
	got := g.down(c, n, F32)
	zero := g.down(e, n, F32)
	for i := range got {
		if got[i] != 2.5 || zero[i] != 0 {
			t.Fatalf("memset: [%d] = %v, %v; want 2.5, 0", i, got[i], zero[i])
		}
	}
}

func TestEventsAndGraph(t *testing.T) {
	g := needGPU(t)
	n := 1 << 20
	if Simulated {
		n = 1 << 18 // still past the 864-block grid cap: the grid-stride loop runs
	}
	x := g.randn(n, 1, F32)
	p := g.up(x, F32)
	start, err := g.d.NewEvent()
	g.ok(err)
	end, err := g.d.NewEvent()
	g.ok(err)
	defer g.d.DestroyEvent(start)
	defer g.d.DestroyEvent(end)

	// Capture ten scalings by 1.5 into a graph, replay it twice: x * 1.5^20.
	// The kernel is loaded first: module loading is no stream work.
	_, err = g.d.Kernel("scale_fwd_f32")
	g.ok(err)
	g.ok(g.d.BeginCapture(g.s))
	for i := 0; i < 10; i++ {
		if err := g.d.Scale(g.s, F32, p, p, 1.5, int64(n)); err != nil {
			g.d.EndCapture(g.s)
			t.Fatal(err)
		}
	}
	gr, err := g.d.EndCapture(g.s)
	g.ok(err)
	defer gr.Destroy()
	g.ok(g.d.Record(start, g.s))
	g.ok(gr.Launch(g.s))
	g.ok(gr.Launch(g.s))
	g.ok(g.d.Record(end, g.s))
	g.ok(g.d.SyncEvent(end))
	ms, err := g.d.Elapsed(start, end)
	g.ok(err)
	// The simulator's events measure its own wall time: no upper bound there.
	if !(ms > 0 && (ms < 10000 || Simulated)) {
		t.Errorf("elapsed %v ms", ms)
	}
	want := make([]float64, n)
	f := math.Pow(1.5, 20)
	for i := range x {
		want[i] = float64(x[i]) * f
	}
	compare(t, "graph replay", g.down(p, n, F32), want, nil, tolF32)
}

func TestModuleErrorLog(t *testing.T) {
	g := needGPU(t)
	_, err := g.d.LoadModule("bad.ptx", ".version 7.8\n.target sm_80\n.address_size 64\n.visible .entry k() { bogus.instruction; ret; }\n")
	if err == nil {
		t.Fatal("bad PTX loaded")
	}
	var ce *Error
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Name, "CUDA_ERROR_") || ce.Call != "cuModuleLoadDataEx" {
		t.Fatalf("error %v: want a *Error naming cuModuleLoadDataEx and a CUDA_ERROR_ code", err)
	}
	if !strings.Contains(err.Error(), "bogus") && !strings.Contains(err.Error(), "line") {
		t.Errorf("error lacks the JIT log: %v", err)
	}
	t.Log(err)
	// Every embedded kernel loads and reports no local-memory spills.
	for _, name := range KernelNames() {
		if HopperOnly(name) && !g.d.Hopper() {
			// sm_90a code: refused on this GPU, with the reason.
			if _, err := g.d.Kernel(name); !errors.Is(err, ErrBadArgument) || !strings.Contains(err.Error(), "compute capability 9.0 only") {
				t.Errorf("%s on a %d.%d GPU: err %v, want the sm_90a refusal", name, g.d.Major, g.d.Minor, err)
			}
			continue
		}
		f, err := g.d.Kernel(name)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Info()
		g.ok(err)
		if fi.LocalBytes > 0 {
			t.Errorf("%s uses %d bytes of local memory (spills)", name, fi.LocalBytes)
		}
	}
}

func TestOutOfMemoryError(t *testing.T) {
	g := needGPU(t)
	_, err := g.d.MemAlloc(int(g.d.TotalMem) * 4)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("allocating 4x the device: %v, want ErrOutOfMemory", err)
	}
}

func TestAllocator(t *testing.T) {
	g := needGPU(t)
	a := g.d.Allocator()
	g.ok(a.Trim())
	before := a.Stats()
	p1, err := a.Alloc(1000)
	g.ok(err)
	p2, err := a.Alloc(5000)
	g.ok(err)
	st := a.Stats()
	if st.Live-before.Live != int64(classSize(1000)+classSize(5000)) {
		t.Fatalf("live grew by %d, want %d", st.Live-before.Live, classSize(1000)+classSize(5000))
	}
	g.ok(a.Free(p1))
	p3, err := a.Alloc(900) // same class as 1000: must reuse p1
	g.ok(err)
	if p3 != p1 {
		t.Errorf("Alloc(900) after Free of a 1000-byte block got a new block")
	}
	if a.Free(p3) != nil || a.Free(p2) != nil {
		t.Fatal("free failed")
	}
	if err := a.Free(p2); err == nil {
		t.Error("double Free not reported")
	}
	st = a.Stats()
	if st.Live != before.Live || st.Peak < before.Live+int64(classSize(1000)+classSize(5000)) {
		t.Errorf("stats after frees: %+v (before %+v)", st, before)
	}
	// A steady loop of same-size allocations reaches the driver once.
	n0 := a.Stats().DriverAllocs
	start := time.Now()
	for i := 0; i < 1000; i++ {
		p, err := a.Alloc(1 << 20)
		g.ok(err)
		g.ok(a.Free(p))
	}
	if n := a.Stats().DriverAllocs - n0; n > 1 {
		t.Errorf("1000 alloc/free pairs made %d driver allocations", n)
	}
	t.Logf("cached alloc+free: %v each", time.Since(start)/1000)
}

func TestClassSize(t *testing.T) {
	for _, n := range []int{1, 511, 512, 513, 1000, 1024, 1025, 1 << 20, 3<<20 + 1} {
		c := classSize(n)
		if c < n || float64(c) > 1.25*float64(max(n, 512))+1 || c%128 != 0 {
			t.Errorf("classSize(%d) = %d", n, c)
		}
	}
}
