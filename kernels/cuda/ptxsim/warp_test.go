package ptxsim

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// mmaPTX stages A (16x16 bf16, row-major), Bt (B transposed: 8x16) and B
// (16x8) in shared memory, loads A with ldmatrix.x4, B with ldmatrix.x2
// from Bt and with ldmatrix.x2.trans from B, and runs
// mma.m16n8k16.row.col bf16 twice with the C fragment given per lane.
// It stores D of both, and the raw A registers from ldmatrix.
const mmaPTX = `.visible .entry mmatest(.param .u64 pa, .param .u64 pbt, .param .u64 pb, .param .u64 pc,
	.param .u64 pd1, .param .u64 pd2, .param .u64 praw)
{
	.reg .b32 %r<64>;
	.reg .b64 %rd<32>;
	.reg .f32 %f<16>;
	.shared .align 16 .b8 sA[512];
	.shared .align 16 .b8 sBt[256];
	.shared .align 16 .b8 sB[256];
	ld.param.u64 %rd1, [pa];
	ld.param.u64 %rd2, [pbt];
	ld.param.u64 %rd3, [pb];
	ld.param.u64 %rd4, [pc];
	ld.param.u64 %rd5, [pd1];
	ld.param.u64 %rd6, [pd2];
	ld.param.u64 %rd15, [praw];
	mov.u32 %r1, %laneid;
	shl.b32 %r2, %r1, 2;
	cvt.u64.u32 %rd7, %r2;
	add.s64 %rd8, %rd1, %rd7;
	mov.u32 %r3, sA;
	add.s32 %r4, %r3, %r2;
	ld.global.u32 %r5, [%rd8];
	st.shared.u32 [%r4], %r5;
	ld.global.u32 %r5, [%rd8+128];
	st.shared.u32 [%r4+128], %r5;
	ld.global.u32 %r5, [%rd8+256];
	st.shared.u32 [%r4+256], %r5;
	ld.global.u32 %r5, [%rd8+384];
	st.shared.u32 [%r4+384], %r5;
	add.s64 %rd9, %rd2, %rd7;
	mov.u32 %r6, sBt;
	add.s32 %r7, %r6, %r2;
	ld.global.u32 %r5, [%rd9];
	st.shared.u32 [%r7], %r5;
	ld.global.u32 %r5, [%rd9+128];
	st.shared.u32 [%r7+128], %r5;
	add.s64 %rd10, %rd3, %rd7;
	mov.u32 %r8, sB;
	add.s32 %r9, %r8, %r2;
	ld.global.u32 %r5, [%rd10];
	st.shared.u32 [%r9], %r5;
	ld.global.u32 %r5, [%rd10+128];
	st.shared.u32 [%r9+128], %r5;
	bar.sync 0;
	// A: lane l gives row (l&7) + 8*((l>>3)&1), column 8*(l>>4).
	shr.u32 %r10, %r1, 3;
	and.b32 %r11, %r1, 7;
	and.b32 %r12, %r10, 1;
	shl.b32 %r12, %r12, 3;
	add.s32 %r13, %r11, %r12;
	shr.u32 %r14, %r10, 1;
	shl.b32 %r14, %r14, 4;
	shl.b32 %r15, %r13, 5;
	add.s32 %r16, %r15, %r14;
	add.s32 %r17, %r3, %r16;
	ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r20,%r21,%r22,%r23}, [%r17];
	// Bt: lane l < 16 gives row n = l&7, columns k from 8*(l>>3).
	and.b32 %r24, %r10, 1;
	shl.b32 %r24, %r24, 4;
	shl.b32 %r25, %r11, 5;
	add.s32 %r26, %r25, %r24;
	add.s32 %r27, %r6, %r26;
	ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%r28,%r29}, [%r27];
	// B, transposed on load: lane l < 16 gives row k = (l&7) + 8*(l>>3).
	and.b32 %r30, %r10, 1;
	shl.b32 %r30, %r30, 3;
	add.s32 %r31, %r11, %r30;
	shl.b32 %r31, %r31, 4;
	add.s32 %r32, %r8, %r31;
	ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%r33,%r34}, [%r32];
	shl.b32 %r35, %r1, 4;
	cvt.u64.u32 %rd11, %r35;
	add.s64 %rd12, %rd4, %rd11;
	ld.global.v4.f32 {%f1,%f2,%f3,%f4}, [%rd12];
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f5,%f6,%f7,%f8}, {%r20,%r21,%r22,%r23}, {%r28,%r29}, {%f1,%f2,%f3,%f4};
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f9,%f10,%f11,%f12}, {%r20,%r21,%r22,%r23}, {%r33,%r34}, {%f1,%f2,%f3,%f4};
	add.s64 %rd13, %rd5, %rd11;
	st.global.v4.f32 [%rd13], {%f5,%f6,%f7,%f8};
	add.s64 %rd14, %rd6, %rd11;
	st.global.v4.f32 [%rd14], {%f9,%f10,%f11,%f12};
	add.s64 %rd16, %rd15, %rd11;
	st.global.v4.u32 [%rd16], {%r20,%r21,%r22,%r23};
	ret;
}
`

func bf16Round(f float64) (uint16, float64) {
	h := f32ToBF16(float32(f))
	return h, float64(bf16ToF32(h))
}

// TestMmaLdmatrix checks ldmatrix (x4, x2, x2.trans) and
// mma.m16n8k16.row.col against a Go matmul, with the fragment layouts
// written out from the PTX ISA (g = lane/4, q = lane%4):
//
//	ldmatrix: lane T holds of matrix i row T/4, columns 2(T%4), 2(T%4)+1.
//	A: reg 0 {A[g][2q..]}, 1 {A[g+8][2q..]}, 2 {A[g][2q+8..]}, 3 {A[g+8][2q+8..]}.
//	C/D: reg 0 C[g][2q], 1 C[g][2q+1], 2 C[g+8][2q], 3 C[g+8][2q+1].
func TestMmaLdmatrix(t *testing.T) {
	t.Run("bf16", func(t *testing.T) { testMma(t, "bf16", bf16Round, func(h uint16) float32 { return bf16ToF32(h) }) })
	t.Run("f16", func(t *testing.T) {
		testMma(t, "f16", func(f float64) (uint16, float64) { h := f64ToF16(f); return h, float64(f16ToF32(h)) }, f16ToF32)
	})
}

// testMma runs mmaPTX with the mma's input type typ (bf16 or f16); round
// encodes a float64 to that type and back, decode reads an element.
func testMma(t *testing.T, typ string, round func(float64) (uint16, float64), decode func(uint16) float32) {
	k := kernel(t, strings.ReplaceAll(mmaPTX, ".bf16.bf16.", "."+typ+"."+typ+"."), "mmatest")
	rng := rand.New(rand.NewPCG(3, 4))
	var A [16][16]float64
	var B [16][8]float64
	var C [16][8]float64
	mem := &testMem{}
	pa, a := mem.alloc(512)
	pbt, bt := mem.alloc(256)
	pb, bm := mem.alloc(256)
	pc, c := mem.alloc(512)
	pd1, d1 := mem.alloc(512)
	pd2, d2 := mem.alloc(512)
	praw, raw := mem.alloc(512)
	for i := 0; i < 16; i++ {
		for j := 0; j < 16; j++ {
			h, v := round(rng.NormFloat64())
			A[i][j] = v
			binary.LittleEndian.PutUint16(a[2*(16*i+j):], h)
		}
	}
	for kk := 0; kk < 16; kk++ {
		for n := 0; n < 8; n++ {
			h, v := round(rng.NormFloat64())
			B[kk][n] = v
			binary.LittleEndian.PutUint16(bm[2*(8*kk+n):], h)
			binary.LittleEndian.PutUint16(bt[2*(16*n+kk):], h)
		}
	}
	frag := func(l int) [4][2]int { // C/D element coordinates of lane l's registers
		g, q := l/4, 2*(l%4)
		return [4][2]int{{g, q}, {g, q + 1}, {g + 8, q}, {g + 8, q + 1}}
	}
	for l := 0; l < 32; l++ {
		for r, ij := range frag(l) {
			v := float64(float32(rng.NormFloat64()))
			C[ij[0]][ij[1]] = v
			binary.LittleEndian.PutUint32(c[16*l+4*r:], math.Float32bits(float32(v)))
		}
	}
	err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{32, 1, 1}, Memory: mem,
		Params: [][]byte{ptrArg(pa), ptrArg(pbt), ptrArg(pb), ptrArg(pc), ptrArg(pd1), ptrArg(pd2), ptrArg(praw)}})
	if err != nil {
		t.Fatal(err)
	}
	for l := 0; l < 32; l++ {
		g, q := l/4, 2*(l%4)
		// A registers straight from ldmatrix.x4.
		coords := [4][2]int{{g, q}, {g + 8, q}, {g, q + 8}, {g + 8, q + 8}}
		for r, rc := range coords {
			got := binary.LittleEndian.Uint32(raw[16*l+4*r:])
			lo, hi := decode(uint16(got)), decode(uint16(got>>16))
			if float64(lo) != A[rc[0]][rc[1]] || float64(hi) != A[rc[0]][rc[1]+1] {
				t.Fatalf("lane %d A reg %d = {%v, %v}, want {A[%d][%d], A[%d][%d]} = {%v, %v}", l, r, lo, hi,
					rc[0], rc[1], rc[0], rc[1]+1, A[rc[0]][rc[1]], A[rc[0]][rc[1]+1])
			}
		}
		for r, ij := range frag(l) {
			want := C[ij[0]][ij[1]]
			for kk := 0; kk < 16; kk++ {
				want += A[ij[0]][kk] * B[kk][ij[1]]
			}
			for name, d := range map[string][]byte{"ldmatrix B": d1, "ldmatrix.trans B": d2} {
				got := math.Float32frombits(binary.LittleEndian.Uint32(d[16*l+4*r:]))
				if math.Abs(float64(got)-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("%s: lane %d D reg %d (D[%d][%d]) = %v, want %v", name, l, r, ij[0], ij[1], got, want)
				}
			}
		}
	}
}

// shflPTX: lane l holds 100+l and shuffles it in every mode; out[l] gets
// the value in the low 32 bits and the predicate in bit 32, per mode.
const shflPTX = `.visible .entry shfl(.param .u64 out)
{
	.reg .pred %p<8>;
	.reg .b32 %r<32>;
	.reg .b64 %rd<32>;
	ld.param.u64 %rd1, [out];
	mov.u32 %r1, %laneid;
	add.s32 %r2, %r1, 100;
	shfl.sync.up.b32 %r3|%p1, %r2, 3, 0, -1;
	shfl.sync.down.b32 %r4|%p2, %r2, 5, 31, -1;
	shfl.sync.bfly.b32 %r5|%p3, %r2, 6, 31, -1;
	shfl.sync.idx.b32 %r6|%p4, %r2, 9, 31, -1;
	// width 8 segments (c = (32-8)<<8 | 31): source lane 2 of each segment
	shfl.sync.idx.b32 %r7|%p5, %r2, 2, 6175, -1;
	// width 8 down by 3: clamped at the segment end
	shfl.sync.down.b32 %r8|%p6, %r2, 3, 6175, -1;
	mul.wide.u32 %rd2, %r1, 48;
	add.s64 %rd3, %rd1, %rd2;
	selp.u32 %r10, 1, 0, %p1;
	mov.b64 %rd4, {%r3, %r10};
	st.global.u64 [%rd3], %rd4;
	selp.u32 %r10, 1, 0, %p2;
	mov.b64 %rd4, {%r4, %r10};
	st.global.u64 [%rd3+8], %rd4;
	selp.u32 %r10, 1, 0, %p3;
	mov.b64 %rd4, {%r5, %r10};
	st.global.u64 [%rd3+16], %rd4;
	selp.u32 %r10, 1, 0, %p4;
	mov.b64 %rd4, {%r6, %r10};
	st.global.u64 [%rd3+24], %rd4;
	selp.u32 %r10, 1, 0, %p5;
	mov.b64 %rd4, {%r7, %r10};
	st.global.u64 [%rd3+32], %rd4;
	selp.u32 %r10, 1, 0, %p6;
	mov.b64 %rd4, {%r8, %r10};
	st.global.u64 [%rd3+40], %rd4;
	ret;
}
`

func TestShfl(t *testing.T) {
	k := kernel(t, shflPTX, "shfl")
	mem := &testMem{}
	p, out := mem.alloc(48 * 32)
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{32, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(p)}}); err != nil {
		t.Fatal(err)
	}
	got := u64s(out)
	for l := 0; l < 32; l++ {
		src := func(j int, ok bool) uint64 {
			if !ok {
				j = l
			}
			return uint64(100+j) | uint64(b2u(ok))<<32
		}
		want := []uint64{
			src(l-3, l >= 3),     // up 3
			src(l+5, l+5 <= 31),  // down 5
			src(l^6, true),       // bfly 6
			src(9, true),         // idx 9
			src(l&^7|2, true),    // idx 2 within 8-lane segments
			src(l+3, l%8+3 <= 7), // down 3 within segments
		}
		for m, w := range want {
			if got[6*l+m] != w {
				t.Errorf("lane %d mode %d: got value %d pred %d, want %d pred %d", l, m,
					uint32(got[6*l+m]), got[6*l+m]>>32, uint32(w), w>>32)
			}
		}
	}
}
