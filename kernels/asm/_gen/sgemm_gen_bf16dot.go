package main

import "fmt"

// avx512BF16Dot writes gemmKernelBF16DotAVX512, the micro-kernel of the
// bf16 GEMM (gemm_bf16dot.go): the 12×32 tile and register plan of the
// float32 kernel, with each k step a pair of k values. Both panels hold
// bf16 pairs in 32-bit slots (k step 2q in the low half, 2q+1 in the
// high), so the broadcast of one A slot and a B vector of 16 slots feed
// VDPBF16PS, which adds both products of each pair into a float32 lane:
// 32 multiply-adds per instruction where VFMADD231PS does 16.
//
//	func gemmKernelBF16DotAVX512(kq int, a, b *uint32, c *float32, ldc int, alpha, beta float32)
//	for i < 12, j < 32: s := sum_q a_lo[q*12+i]*b_lo[q*32+j] + a_hi[q*12+i]*b_hi[q*32+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == ±0)
func avx512BF16Dot() []byte {
	return vecKernel(zmm, 12, 2, 0, false, true)
}

// vdpbf16ps writes VDPBF16PS Z<dst>, Z<src1>, Z<src2> (Intel operand
// order: dst += pairwise dot of src1 and src2) as bytes: Go's assembler has
// no AVX512_BF16 mnemonics. EVEX.512.F3.0F38.W0 52 /r, register form.
func vdpbf16ps(b *w, dst, src1, src2 int) {
	bit := func(r, n int) int { return r >> n & 1 }
	p0 := (1-bit(dst, 3))<<7 | (1-bit(src2, 4))<<6 | (1-bit(src2, 3))<<5 | (1-bit(dst, 4))<<4 | 0b10 // R X B R' 00 mm=0F38
	p1 := (^src1&15)<<3 | 1<<2 | 0b10                                                                // W=0 vvvv 1 pp=F3
	p2 := 0b10<<5 | (1-bit(src1, 4))<<3                                                              // z=0 L'L=512 b=0 V' aaa=0
	modrm := 0b11<<6 | (dst&7)<<3 | src2&7
	b.f("\tBYTE $0x62; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x52; BYTE $0x%02x // VDPBF16PS %s",
		p0, p1, p2, modrm, fmt.Sprintf("Z%d, Z%d, Z%d", dst, src1, src2))
}

// neonBF16Dot writes gemmKernelBF16DotNEON, the bf16 micro-kernel for
// arm64 CPUs with FEAT_BF16 (Graviton 3 and later, Apple M2 and later):
// the 8×12 tile and accumulators V0-V23 of the float32 NEON kernel, over
// the same pair panels as the AVX-512 one. Each k step loads 12 B slots
// (V24-V26, four columns' pairs each) and 8 A slots (V27, V28, four rows'
// pairs each); BFDOT by element adds, for each of a B register's four
// columns, both products of the column's pair with one row's pair into a
// float32 lane: 8 multiply-adds per instruction where FMLA does 4, and
// 5 loads per 24 instead of 11 per 24.
//
//	func gemmKernelBF16DotNEON(kq int, a, b *uint32, c *float32, ldc int, alpha, beta float32)
//	for i < 8, j < 12: s := sum_q a_lo[q*8+i]*b_lo[q*12+j] + a_hi[q*8+i]*b_hi[q*12+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == ±0)
//
// BFDOT follows Arm's BFloat16 arithmetic (FPCR.EBF clear, the default):
// subnormal inputs and results flushed to zero and each sum rounded to odd
// rather than to nearest, so an element can differ from VDPBF16PS's by an
// ulp per k pair, within the (k+4)·2⁻²³ bound the tests hold both to.
func neonBF16Dot() []byte {
	const mr = 8
	var b w
	b.WriteString(header)
	neonPrologue(&b, "gemmKernelBF16DotNEON", "kq", "a, b *uint32, c *float32", mr)
	b.f("\tVLD1.P 48(R1), [V24.S4, V25.S4, V26.S4]")
	b.f("\tVLD1.P 32(R0), [V27.S4, V28.S4]")
	for i := 0; i < mr; i++ {
		for j := 0; j < 3; j++ {
			bfdotElem(&b, 3*i+j, 24+j, 27+i/4, i%4)
		}
	}
	b.f("\tSUBS $1, R3, R3")
	b.f("\tBNE loop")
	neonEpilogue(&b, mr)
	return b.Bytes()
}

// bfdotElem writes BFDOT V<d>.4S, V<n>.8H, V<m>.2H[idx] as a WORD: Go's
// assembler has no FEAT_BF16 mnemonics. Encoding (Arm ARM, BFDOT by
// element, Q=1): 0 1 001111 01 L M Rm 1111 H 0 Rn Rd, idx = H:L, Vm = M:Rm.
func bfdotElem(b *w, d, n, m, idx int) {
	word := 0x4f40f000 | (idx&1)<<21 | (m>>4&1)<<20 | (m&15)<<16 | (idx>>1&1)<<11 | n<<5 | d
	b.f("\tWORD $0x%08x // BFDOT V%d.4S, V%d.8H, V%d.2H[%d]", word, d, n, m, idx)
}
