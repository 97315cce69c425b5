package ptxsim

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestCpAsync: data copied by cp.async appears in shared memory only after
// cp.async.wait_group; before, the 0xFF poison shows. The zero-fill form
// (src-size 4 of 16) clears the rest.
func TestCpAsync(t *testing.T) {
	src := `.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<8>;
	.reg .b64 %rd<4>;
	.shared .align 16 .b8 s[32];
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, s;
	cp.async.cg.shared.global [%r1], [%rd1], 16;
	cp.async.commit_group;
	cp.async.ca.shared.global [%r1+16], [%rd1], 16, 4;
	cp.async.commit_group;
	ld.shared.u32 %r2, [%r1];
	cp.async.wait_group 1;
	ld.shared.u32 %r3, [%r1];
	ld.shared.u32 %r4, [%r1+20];
	cp.async.wait_all;
	ld.shared.u32 %r5, [%r1+16];
	ld.shared.u32 %r6, [%r1+20];
	st.global.v4.u32 [%rd1+16], {%r2, %r3, %r4, %r5};
	st.global.u32 [%rd1+32], %r6;
	ret;
}
`
	k := kernel(t, src, "k")
	mem := &testMem{}
	p, buf := mem.alloc(64)
	for i := 0; i < 16; i++ {
		buf[i] = byte(i + 1)
	}
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{1, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(p)}}); err != nil {
		t.Fatal(err)
	}
	got := [5]uint32{}
	for i := range got {
		got[i] = binary.LittleEndian.Uint32(buf[16+4*i:])
	}
	want := [5]uint32{0xFFFFFFFF, 0x04030201, 0xFFFFFFFF, 0x04030201, 0}
	if got != want {
		t.Errorf("before wait, after wait_group 1, pending group, after wait_all, zero-filled: got %x, want %x", got, want)
	}
}

// TestCallAndAtomics: a .func called with call.uni through .param
// variables, and global atomics from several blocks.
func TestCallAndAtomics(t *testing.T) {
	src := `.func (.param .b32 ret) addmul(.param .b32 a, .param .b32 b)
{
	.reg .b32 %r<4>;
	ld.param.u32 %r1, [a];
	ld.param.u32 %r2, [b];
	mad.lo.s32 %r3, %r1, 3, %r2;
	st.param.b32 [ret+0], %r3;
	ret;
}

.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<8>;
	.reg .f32 %f<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	{ // callseq 0, 0
	.reg .b32 temp_param_reg;
	.param .b32 param0;
	st.param.b32 [param0+0], %r1;
	.param .b32 param1;
	st.param.b32 [param1+0], 7;
	.param .b32 retval0;
	call.uni (retval0),
	addmul,
	(
	param0,
	param1
	);
	ld.param.b32 %r2, [retval0+0];
	} // callseq 0
	atom.global.add.u32 %r3, [%rd1], %r2;
	mov.f32 %f1, 0f3F000000;
	atom.global.add.f32 %f2, [%rd1+4], %f1;
	atom.global.max.s32 %r4, [%rd1+8], %r2;
	atom.global.cas.b32 %r5, [%rd1+12], 0, 1;
	red.global.add.u32 [%rd1+16], 1;
	ret;
}
`
	k := kernel(t, src, "k")
	mem := &testMem{}
	p, buf := mem.alloc(64)
	clear(buf)
	if err := k.Launch(Config{Grid: [3]int{8, 1, 1}, Block: [3]int{64, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(p)}}); err != nil {
		t.Fatal(err)
	}
	sum := uint32(0)
	for i := 0; i < 64; i++ {
		sum += uint32(3*i + 7)
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(buf[4*i:]) }
	if u(0) != 8*sum || math.Float32frombits(u(1)) != 256 || u(2) != 3*63+7 || u(3) != 1 || u(4) != 512 {
		t.Errorf("atomics: add %d (want %d), f32 add %v (256), max %d (196), cas %d (1), red %d (512)",
			u(0), 8*sum, math.Float32frombits(u(1)), u(2), u(3), u(4))
	}
}

// TestLocalAndGeneric: a .local depot addressed through %SPL (local space)
// and %SP (generic, after cvta.local), and shared memory through a generic
// address (cvta.shared); module .global and .const variables with
// initializers.
func TestLocalAndGeneric(t *testing.T) {
	src := `.global .align 4 .b8 gtab[8] = {1, 0, 0, 0, 2, 0, 0, 0};
.const .align 4 .u32 ctab[2] = {30, 40};

.visible .entry k(.param .u64 p)
{
	.local .align 8 .b8 __local_depot0[16];
	.reg .b64 %SP;
	.reg .b64 %SPL;
	.reg .b32 %r<12>;
	.reg .b64 %rd<8>;
	.shared .align 4 .b8 s[16];
	mov.u64 %SPL, __local_depot0;
	cvta.local.u64 %SP, %SPL;
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	st.local.u32 [%SPL+4], %r1;
	ld.u32 %r2, [%SP+4];
	mov.u64 %rd2, s;
	cvta.shared.u64 %rd3, %rd2;
	add.s32 %r3, %r2, 100;
	st.u32 [%rd3+8], %r3;
	ld.shared.u32 %r4, [s+8];
	mov.u64 %rd4, gtab;
	ld.global.u32 %r5, [%rd4+4];
	ld.const.u32 %r6, [ctab+4];
	add.s32 %r7, %r4, %r5;
	add.s32 %r7, %r7, %r6;
	cvta.to.shared.u64 %rd5, %rd3;
	cvt.u32.u64 %r8, %rd5;
	st.shared.u32 [%r8+12], %r7;
	ld.shared.u32 %r9, [s+12];
	mul.wide.u32 %rd6, %r1, 4;
	add.s64 %rd7, %rd1, %rd6;
	st.global.u32 [%rd7], %r9;
	ret;
}
`
	buf, err := launch1(t, src, 4, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if got, want := binary.LittleEndian.Uint32(buf[4*i:]), uint32(i+100+2+40); got != want {
			t.Errorf("thread %d: %d, want %d", i, got, want)
		}
	}
	// The local depot is per thread and sized from its declaration.
	if k := kernel(t, src, "k"); k.LocalBytes() != 16 || k.StaticShared() != 16 {
		t.Errorf("LocalBytes %d StaticShared %d, want 16 and 16", k.LocalBytes(), k.StaticShared())
	}
}
