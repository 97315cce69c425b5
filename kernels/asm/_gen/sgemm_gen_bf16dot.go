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
