package ptxsim

import (
	"errors"
	"strings"
	"testing"
)

// launch1 runs a kernel taking one pointer to a 256-byte buffer.
func launch1(t *testing.T, src string, block, grid int, budget int64) ([]byte, error) {
	t.Helper()
	k := kernel(t, src, "k")
	mem := &testMem{}
	p, buf := mem.alloc(256)
	err := k.Launch(Config{Grid: [3]int{grid, 1, 1}, Block: [3]int{block, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(p)}, Budget: budget})
	return buf, err
}

func wantFault(t *testing.T, err error, kind FaultKind, line int, parts ...string) *Fault {
	t.Helper()
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a %s fault", err, kind)
	}
	if f.Kind != kind || (line > 0 && f.Line != line) {
		t.Fatalf("got %v (kind %s line %d), want %s at line %d", err, f.Kind, f.Line, kind, line)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
	return f
}

// Line numbers below count the 3-line header that kernel() prepends.

func TestOutOfBounds(t *testing.T) {
	src := `.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.global.u32 [%rd3], %r1;
	ret;
}
`
	if _, err := launch1(t, src, 64, 1, 0); err != nil {
		t.Fatalf("64 threads x 4 bytes in 256: %v", err)
	}
	_, err := launch1(t, src, 65, 1, 0)
	f := wantFault(t, err, FaultIllegalAddress, 12, "kernel k", "thread (64,0,0)", "st.global.u32", "not inside any live allocation")
	if f.Size != 4 || f.Space != "global" {
		t.Errorf("fault %+v", f)
	}
}

func TestMisaligned(t *testing.T) {
	src := `.visible .entry k(.param .u64 p)
{
	.reg .f32 %f<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	ld.global.v2.f32 {%f1, %f2}, [%rd1+4];
	ret;
}
`
	_, err := launch1(t, src, 1, 1, 0)
	wantFault(t, err, FaultMisaligned, 9, "8-byte global access", "not aligned to 8")
}

func TestSharedBoundsAndPoison(t *testing.T) {
	src := `.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	.shared .align 4 .b8 s[64];
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, s;
	ld.shared.u32 %r2, [%r1+60];
	st.global.u32 [%rd1], %r2;
	ld.shared.u32 %r2, [%r1+64];
	ret;
}
`
	buf, err := launch1(t, src, 1, 1, 0)
	wantFault(t, err, FaultIllegalAddress, 13, "shared access", "64 bytes of shared memory")
	if string(buf[:4]) != "\xff\xff\xff\xff" {
		t.Errorf("unwritten shared memory read %x, want the 0xFF poison", buf[:4])
	}
}

func TestDeadlock(t *testing.T) {
	// Lanes 0-15 and 16-31 reach different shfl.sync instructions with a
	// full member mask: each half waits for the other forever.
	src := `.visible .entry k(.param .u64 p)
{
	.reg .pred %p<2>;
	.reg .b32 %r<4>;
	mov.u32 %r1, %laneid;
	setp.lt.u32 %p1, %r1, 16;
	@%p1 bra $L_low;
	shfl.sync.bfly.b32 %r2, %r1, 1, 31, -1;
	ret;
$L_low:
	shfl.sync.bfly.b32 %r2, %r1, 1, 31, -1;
	ret;
}
`
	_, err := launch1(t, src, 32, 1, 0)
	wantFault(t, err, FaultDeadlock, 0, "no thread can progress", "16 lanes at shfl.sync.bfly.b32 (line 11)", "16 lanes at shfl.sync.bfly.b32 (line 14)")
}

func TestBarrierWithExitedThreads(t *testing.T) {
	// Threads that exit do not hold a barrier back (as on the hardware).
	src := `.visible .entry k(.param .u64 p)
{
	.reg .pred %p<2>;
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	setp.ge.u32 %p1, %r1, 40;
	@%p1 bra $L_end;
	bar.sync 0;
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.global.u32 [%rd3], %r1;
$L_end:
	ret;
}
`
	if _, err := launch1(t, src, 64, 1, 0); err != nil {
		t.Fatal(err)
	}
}

func TestBudget(t *testing.T) {
	src := `.visible .entry k(.param .u64 p)
{
$L_loop:
	bra.uni $L_loop;
}
`
	_, err := launch1(t, src, 32, 4, 1_000_000)
	wantFault(t, err, FaultBudget, 0, "budget of 1000000")
}

func TestTrapAndBadLaunch(t *testing.T) {
	_, err := launch1(t, ".visible .entry k(.param .u64 p)\n{\n\ttrap;\n}\n", 1, 1, 0)
	wantFault(t, err, FaultTrap, 6, "trap")
	k := kernel(t, ".visible .entry k(.param .u64 p)\n{\n\tret;\n}\n", "k")
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{2048, 1, 1}, Params: [][]byte{ptrArg(0)}}); err == nil {
		t.Error("a 2048-thread block launched")
	}
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{1, 1, 1}}); err == nil {
		t.Error("a launch without the kernel's parameter succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		".visible .entry k()\n{\n\tfoo.bar %r1;\n}\n",
		".visible .entry k()\n{\n\t.reg .b32 %r<2>;\n\tadd.s32 %r1, %r9, 1;\n}\n",
		".visible .entry k()\n{\n\tbra $L_nowhere;\n}\n",
	} {
		m, err := Load("bad.ptx", ptxHeader+src)
		if err == nil {
			_, err = m.Kernel("k")
		}
		if err == nil || !strings.Contains(err.Error(), "bad.ptx:") {
			t.Errorf("%q: got %v, want an error naming bad.ptx and the line", src, err)
		}
	}
}

func TestDivergentCollectives(t *testing.T) {
	// Lanes 0-15 wait at a full-mask shfl for lanes 16-31, which first do
	// a shfl among themselves (mask 0xFFFF0000) and then join: no deadlock.
	src := `.visible .entry k(.param .u64 p)
{
	.reg .pred %p<2>;
	.reg .b32 %r<6>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %laneid;
	setp.lt.u32 %p1, %r1, 16;
	@%p1 bra $L_join;
	shfl.sync.bfly.b32 %r1, %r1, 1, 31, -65536;
$L_join:
	shfl.sync.idx.b32 %r2, %r1, 17, 31, -1;
	mov.u32 %r3, %laneid;
	mul.wide.u32 %rd2, %r3, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.global.u32 [%rd3], %r2;
	ret;
}
`
	buf, err := launch1(t, src, 32, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != 16 || buf[4*31] != 16 {
		t.Errorf("lane 17's value after the partial bfly: got %d and %d, want 16", buf[0], buf[4*31])
	}
}
