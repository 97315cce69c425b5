package ptxsim

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// wgmmaPTX: one warpgroup (128 threads) copies A [64][64] and B [8][64]
// (bf16, row-major in global memory) into shared memory in the 128-byte
// swizzled K-major layout (16-byte chunk c of row r at (r/8)·1024 +
// (r%8)·128 + 16·(c ^ r%8)), runs four wgmma.mma_async m64n8k16 along K
// (the descriptors' start moved 32 bytes a step, scale-d off for the first),
// commits, waits (unless NOWAIT is cut out) and stores each thread's four
// accumulators to D[tid][0..3]. SWZ is the descriptor's swizzle mode.
const wgmmaPTX = `.visible .entry k(.param .u64 pa, .param .u64 pb, .param .u64 pd)
{
	.reg .pred %p<4>;
	.reg .b32 %r<40>;
	.reg .b64 %rd<40>;
	.reg .f32 %f<8>;
	.shared .align 1024 .b8 sa[8192];
	.shared .align 1024 .b8 sb[1024];
	ld.param.u64 %rd1, [pa];
	ld.param.u64 %rd2, [pb];
	ld.param.u64 %rd3, [pd];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, 0;
$LA:
	mad.lo.u32 %r3, %r2, 128, %r1;
	shr.u32 %r4, %r3, 3;
	and.b32 %r5, %r3, 7;
	and.b32 %r6, %r4, 7;
	xor.b32 %r7, %r5, %r6;
	shr.u32 %r8, %r4, 3;
	shl.b32 %r9, %r8, 10;
	shl.b32 %r10, %r6, 7;
	shl.b32 %r11, %r7, 4;
	add.u32 %r12, %r9, %r10;
	add.u32 %r12, %r12, %r11;
	mov.u32 %r13, sa;
	add.u32 %r12, %r12, %r13;
	mul.wide.u32 %rd4, %r3, 16;
	add.u64 %rd5, %rd1, %rd4;
	ld.global.v4.u32 {%r20, %r21, %r22, %r23}, [%rd5];
	st.shared.v4.u32 [%r12], {%r20, %r21, %r22, %r23};
	add.u32 %r2, %r2, 1;
	setp.lt.u32 %p1, %r2, 4;
	@%p1 bra $LA;
	setp.ge.u32 %p1, %r1, 64;
	@%p1 bra $LB;
	shr.u32 %r4, %r1, 3;
	and.b32 %r5, %r1, 7;
	xor.b32 %r7, %r5, %r4;
	shl.b32 %r10, %r4, 7;
	shl.b32 %r11, %r7, 4;
	add.u32 %r12, %r10, %r11;
	mov.u32 %r13, sb;
	add.u32 %r12, %r12, %r13;
	mul.wide.u32 %rd4, %r1, 16;
	add.u64 %rd5, %rd2, %rd4;
	ld.global.v4.u32 {%r20, %r21, %r22, %r23}, [%rd5];
	st.shared.v4.u32 [%r12], {%r20, %r21, %r22, %r23};
$LB:
	fence.proxy.async.shared::cta;
	bar.sync 0;
	mov.u32 %r14, sa;
	mov.u32 %r15, sb;
	mov.b64 %rd10, SWZ;
	shl.b64 %rd10, %rd10, 62;
	or.b64 %rd10, %rd10, 274877906944; // SBO 1024 bytes: 64 << 32
	or.b64 %rd10, %rd10, 65536;
	mov.f32 %f1, 0f00000000;
	mov.f32 %f2, 0f00000000;
	mov.f32 %f3, 0f00000000;
	mov.f32 %f4, 0f00000000;
	wgmma.fence.sync.aligned;
	mov.u32 %r2, 0;
$LK:
	shl.b32 %r16, %r2, 5;
	add.u32 %r17, %r14, %r16;
	add.u32 %r18, %r15, %r16;
	shr.u32 %r17, %r17, 4;
	shr.u32 %r18, %r18, 4;
	cvt.u64.u32 %rd11, %r17;
	cvt.u64.u32 %rd12, %r18;
	or.b64 %rd11, %rd11, %rd10;
	or.b64 %rd12, %rd12, %rd10;
	setp.ne.u32 %p2, %r2, 0;
	wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%f1, %f2, %f3, %f4}, %rd11, %rd12, %p2, 1, 1, 0, 0;
	add.u32 %r2, %r2, 1;
	setp.lt.u32 %p1, %r2, 4;
	@%p1 bra $LK;
	wgmma.commit_group.sync.aligned;
	wgmma.wait_group.sync.aligned 0;
	mul.wide.u32 %rd6, %r1, 16;
	add.u64 %rd7, %rd3, %rd6;
	st.global.v4.f32 [%rd7], {%f1, %f2, %f3, %f4};
	ret;
}
`

// runWgmma launches wgmmaPTX (with the given swizzle mode, the wait cut
// out when nowait) on small-integer A and B, and returns D and the inputs.
func runWgmma(t *testing.T, swz string, nowait bool) (d []float32, a, b [][]float32, err error) {
	t.Helper()
	src := strings.Replace(wgmmaPTX, "SWZ", swz, 1)
	if nowait {
		src = strings.Replace(src, "\twgmma.wait_group.sync.aligned 0;\n", "", 1)
	}
	k := kernel(t, src, "k")
	mem := &testMem{}
	pa, ba := mem.alloc(64 * 64 * 2)
	pb, bb := mem.alloc(8 * 64 * 2)
	pd, bd := mem.alloc(128 * 4 * 4)
	fill := func(buf []byte, rows int, seed int) [][]float32 {
		m := make([][]float32, rows)
		for r := range m {
			m[r] = make([]float32, 64)
			for c := range m[r] {
				v := float32((r*7+c*3+seed)%9 - 4) // small integers: every sum is exact
				m[r][c] = v
				binary.LittleEndian.PutUint16(buf[2*(r*64+c):], uint16(math.Float32bits(v)>>16))
			}
		}
		return m
	}
	a, b = fill(ba, 64, 1), fill(bb, 8, 5)
	err = k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{128, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(pa), ptrArg(pb), ptrArg(pd)}})
	d = make([]float32, 128*4)
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(bd[4*i:]))
	}
	return d, a, b, err
}

// TestWgmma: D = A·Bᵀ over K = 64 in four k16 steps, each thread's
// registers at the ISA's accumulator layout: warp w, lane l, register i
// hold D[16w + l/4 + 8·(i/2)][2·(l%4) + i%2].
func TestWgmma(t *testing.T) {
	d, a, b, err := runWgmma(t, "1", false)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for tid := 0; tid < 128; tid++ {
		w, l := tid/32, tid%32
		for i := 0; i < 4; i++ {
			row, col := 16*w+l/4+8*(i/2), 2*(l%4)+i%2
			var want float32
			for k := 0; k < 64; k++ {
				want += a[row][k] * b[col][k]
			}
			if got := d[4*tid+i]; got != want {
				if bad < 5 {
					t.Errorf("thread %d register %d (D[%d][%d]) = %v, want %v", tid, i, row, col, got, want)
				}
				bad++
			}
		}
	}
}

// A thread that exits with its wgmma group not waited for faults, and a
// swizzle mode the simulator does not model is refused with the
// descriptor, not computed with some other layout.
func TestWgmmaFaults(t *testing.T) {
	_, _, _, err := runWgmma(t, "1", true)
	wantFault(t, err, FaultTrap, 0, "exit with 1 wgmma.mma_async not retired by wgmma.wait_group")
	_, _, _, err = runWgmma(t, "2", false)
	wantFault(t, err, FaultTrap, 0, "swizzle mode 2 (only 1, 128-byte, is simulated)")
}

// The swizzled address of a few (row, chunk) pairs, worked by hand:
// start 1024, SBO 1024. Row 9 chunk 1: 1024 + 1024 + 128 + 16 = 2192,
// whose row-in-8 bits (7-9) are 1, so chunk 1 ^ 1 = 0: 2176.
func TestWgmmaAddr(t *testing.T) {
	desc := uint64(1024>>4) | uint64(1024>>4)<<32 | 1<<62
	for _, c := range []struct {
		r, c int
		want uint64
	}{{0, 0, 1024}, {0, 1, 1040}, {1, 0, 1168}, {7, 0, 1024 + 7*128 + 7*16}, {9, 1, 2176}} {
		got, err := wgmmaAddr(desc, c.r, c.c)
		if err != nil || got != c.want {
			t.Errorf("row %d chunk %d: %d (%v), want %d", c.r, c.c, got, err, c.want)
		}
	}
}

// The MN-major (transposed B) address of a few (n, k) elements, worked by
// hand: start 4096, LBO 1024 (the second 64 columns), SBO 2048 (k 8..15).
// (n 0, k 0): 4096. (n 9, k 0): 4096 + 18 = 4114, chunk 1 of row-in-8 0:
// unswizzled. (n 9, k 3): 4096 + 3·128 + 18 = 4498, chunk 1 ^ 3 = 2: 4530.
// (n 70, k 9): 4096 + 2048 + 1024 + 128 + 12 = 7308, chunk 0 ^ 1 = 1: 7324.
// A wrong reading of LBO and SBO (swapped) moves the last one.
func TestWgmmaElemMNMajor(t *testing.T) {
	desc := uint64(4096>>4) | uint64(1024>>4)<<16 | uint64(2048>>4)<<32 | 1<<62
	for _, c := range []struct {
		n, k int
		want uint64
	}{{0, 0, 4096}, {9, 0, 4114}, {9, 3, 4514}, {70, 9, 7324}} {
		got, err := wgmmaElem(desc, true, c.n, c.k)
		if err != nil || got != c.want {
			t.Errorf("n %d k %d: %d (%v), want %d", c.n, c.k, got, err, c.want)
		}
	}
}
