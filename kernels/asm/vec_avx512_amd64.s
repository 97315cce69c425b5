//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX-512 vector kernels: vec_amd64.s with 16-float ZMM vectors (the exp
// family is in vec_exp_avx512_amd64.s). Each routine handles the first
// len - len%16 elements; vec_tail.go does the rest. Reductions keep four
// accumulators (64 partial sums).

C4(ninf16, 0xff800000)
C4(lowBit16, 0x00000001)
C4(r7fff16, 0x00007fff)
C4(qnan16, 0x00007fc0)

// func dotAVX512(x, y []float32) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ y_base+24(FP), DI
	MOVQ x_len+8(FP), CX
	SHRQ $4, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

dot64:
	CMPQ CX, $4
	JLT  dot16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $4, CX
	JMP  dot64

dot16:
	TESTQ CX, CX
	JEQ   dotdone
	VMOVUPS (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JMP  dot16

dotdone:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM16
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func sumAVX512(x []float32) float32
TEXT ·sumAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $4, CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

sum64:
	CMPQ CX, $4
	JLT  sum16
	VADDPS (SI), Z0, Z0
	VADDPS 64(SI), Z1, Z1
	VADDPS 128(SI), Z2, Z2
	VADDPS 192(SI), Z3, Z3
	ADDQ $256, SI
	SUBQ $4, CX
	JMP  sum64

sum16:
	TESTQ CX, CX
	JEQ   sumdone
	VADDPS (SI), Z0, Z0
	ADDQ $64, SI
	DECQ CX
	JMP  sum16

sumdone:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM16
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX512(x []float32) float32
// VMAXPS drops NaNs, so unordered compares are OR-ed into K2.
TEXT ·maxAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $4, CX
	VBROADCASTSS ninf16<>(SB), Z0
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3
	KXORW K2, K2, K2

max64:
	CMPQ CX, $4
	JLT  max16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VMAXPS  Z4, Z0, Z0
	VMAXPS  Z5, Z1, Z1
	VMAXPS  Z6, Z2, Z2
	VMAXPS  Z7, Z3, Z3
	VCMPPS  $3, Z5, Z4, K1
	KORW    K1, K2, K2
	VCMPPS  $3, Z7, Z6, K1
	KORW    K1, K2, K2
	ADDQ    $256, SI
	SUBQ    $4, CX
	JMP     max64

max16:
	TESTQ CX, CX
	JEQ   maxdone
	VMOVUPS (SI), Z4
	VMAXPS  Z4, Z0, Z0
	VCMPPS  $3, Z4, Z4, K1
	KORW    K1, K2, K2
	ADDQ    $64, SI
	DECQ    CX
	JMP     max16

maxdone:
	VMAXPS Z1, Z0, Z0
	VMAXPS Z3, Z2, Z2
	VMAXPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	KORTESTW K2, K2
	JNE   maxnan
	VMOVSS X0, ret+24(FP)
	RET

maxnan:
	MOVL $0x7fc00000, AX
	MOVL AX, ret+24(FP)
	RET

// func axpyAVX512(alpha float32, x, y []float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Z15
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+32(FP), DI
	SHRQ $4, CX

axpy64:
	CMPQ CX, $4
	JLT  axpy16
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	VFMADD231PS (SI), Z15, Z0
	VFMADD231PS 64(SI), Z15, Z1
	VFMADD231PS 128(SI), Z15, Z2
	VFMADD231PS 192(SI), Z15, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $4, CX
	JMP  axpy64

axpy16:
	TESTQ CX, CX
	JEQ   axpydone
	VMOVUPS (DI), Z0
	VFMADD231PS (SI), Z15, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JMP  axpy16

axpydone:
	VZEROUPPER
	RET

// func scaleToAVX512(dst, x []float32, alpha float32)
TEXT ·scaleToAVX512(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS alpha+48(FP), Z15
	SHRQ $4, CX

scale64:
	CMPQ CX, $4
	JLT  scale16
	VMULPS (SI), Z15, Z0
	VMULPS 64(SI), Z15, Z1
	VMULPS 128(SI), Z15, Z2
	VMULPS 192(SI), Z15, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $4, CX
	JMP  scale64

scale16:
	TESTQ CX, CX
	JEQ   scaledone
	VMULPS (SI), Z15, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JMP  scale16

scaledone:
	VZEROUPPER
	RET

// func addAVX512(dst, x, y []float32)
TEXT ·addAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	SHRQ $4, CX

add32:
	CMPQ CX, $2
	JLT  add16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VADDPS (DX), Z0, Z0
	VADDPS 64(DX), Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  add32

add16:
	TESTQ CX, CX
	JEQ   adddone
	VMOVUPS (SI), Z0
	VADDPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)

adddone:
	VZEROUPPER
	RET

// func mulAVX512(dst, x, y []float32)
TEXT ·mulAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	SHRQ $4, CX

mul32:
	CMPQ CX, $2
	JLT  mul16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMULPS (DX), Z0, Z0
	VMULPS 64(DX), Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  mul32

mul16:
	TESTQ CX, CX
	JEQ   muldone
	VMOVUPS (SI), Z0
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)

muldone:
	VZEROUPPER
	RET

// func subShiftAVX512(dst, x []float32, a, b float32)
TEXT ·subShiftAVX512(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS a+48(FP), Z14
	VBROADCASTSS b+52(FP), Z15
	SHRQ $4, CX

sub32:
	CMPQ CX, $2
	JLT  sub16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VSUBPS Z14, Z0, Z0
	VSUBPS Z14, Z1, Z1
	VSUBPS Z15, Z0, Z0
	VSUBPS Z15, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  sub32

sub16:
	TESTQ CX, CX
	JEQ   subdone
	VMOVUPS (SI), Z0
	VSUBPS Z14, Z0, Z0
	VSUBPS Z15, Z0, Z0
	VMOVUPS Z0, (DI)

subdone:
	VZEROUPPER
	RET

// func scaleMulAVX512(dst, x, w []float32, s float32)
TEXT ·scaleMulAVX512(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Z15
	SHRQ $4, CX

sm32:
	CMPQ CX, $2
	JLT  sm16
	VMULPS (SI), Z15, Z0
	VMULPS 64(SI), Z15, Z1
	VMULPS (DX), Z0, Z0
	VMULPS 64(DX), Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  sm32

sm16:
	TESTQ CX, CX
	JEQ   smdone
	VMULPS (SI), Z15, Z0
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)

smdone:
	VZEROUPPER
	RET

// func bf16ToF32AVX512(dst []float32, src []uint16)
TEXT ·bf16ToF32AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $4, CX

wid32:
	CMPQ CX, $2
	JLT  wid16
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPSLLD $16, Z0, Z0
	VPSLLD $16, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  wid32

wid16:
	TESTQ CX, CX
	JEQ   widdone
	VPMOVZXWD (SI), Z0
	VPSLLD $16, Z0, Z0
	VMOVUPS Z0, (DI)

widdone:
	VZEROUPPER
	RET

// func f32ToBF16AVX512(dst []uint16, src []float32)
// As f32ToBF16AVX2; NaN lanes are overwritten under a compare mask and
// VPMOVDW narrows (the values fit in 16 bits).
TEXT ·f32ToBF16AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VPBROADCASTD lowBit16<>(SB), Z13
	VPBROADCASTD r7fff16<>(SB), Z14
	VPBROADCASTD qnan16<>(SB), Z15
	SHRQ $4, CX

nar16:
	TESTQ CX, CX
	JEQ   nardone
	VMOVUPS (SI), Z0
	VPSRLD $16, Z0, Z1
	VPANDD Z13, Z1, Z1
	VPADDD Z14, Z1, Z1
	VPADDD Z0, Z1, Z1
	VPSRLD $16, Z1, Z1
	VCMPPS $3, Z0, Z0, K1
	VMOVDQA32 Z15, K1, Z1
	VPMOVDW Z1, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JMP  nar16

nardone:
	VZEROUPPER
	RET
