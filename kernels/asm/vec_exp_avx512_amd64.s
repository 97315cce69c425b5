//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX-512 exp family. The constants live in Z19-Z31 (32 registers leave
// room), VRNDSCALEPS rounds, and VSCALEFPS applies 2^n: it rounds a
// subnormal result once and overflows only when the true result does,
// exactly like the two-factor scaling of the AVX2 and Go versions. Each
// routine handles the first len - len%16 elements.

#include "vec_exp_avx512_amd64.h"

// func expShiftSumAVX512(dst, x []float32, shift float32) float32
TEXT ·expShiftSumAVX512(SB), NOSPLIT, $0-60
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS shift+48(FP), Z18
	EXPCONSTS
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	SHRQ $4, CX

ess32:
	CMPQ CX, $2
	JLT  ess16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z8
	VSUBPS Z18, Z4, Z4
	VSUBPS Z18, Z8, Z8
	EXP16(Z4, Z5, Z6, Z7)
	EXP16(Z8, Z9, Z10, Z11)
	VMOVUPS Z4, (DI)
	VMOVUPS Z8, 64(DI)
	VADDPS Z4, Z0, Z0
	VADDPS Z8, Z1, Z1
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  ess32

ess16:
	TESTQ CX, CX
	JEQ   essdone
	VMOVUPS (SI), Z4
	VSUBPS Z18, Z4, Z4
	EXP16(Z4, Z5, Z6, Z7)
	VMOVUPS Z4, (DI)
	VADDPS Z4, Z0, Z0

essdone:
	VADDPS Z1, Z0, Z0
	HSUM16
	VMOVSS X0, ret+56(FP)
	VZEROUPPER
	RET

// func expSumAVX512(x []float32, shift float32) float32
TEXT ·expSumAVX512(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS shift+24(FP), Z18
	EXPCONSTS
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	SHRQ $4, CX

es32:
	CMPQ CX, $2
	JLT  es16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z8
	VSUBPS Z18, Z4, Z4
	VSUBPS Z18, Z8, Z8
	EXP16(Z4, Z5, Z6, Z7)
	EXP16(Z8, Z9, Z10, Z11)
	VADDPS Z4, Z0, Z0
	VADDPS Z8, Z1, Z1
	ADDQ $128, SI
	SUBQ $2, CX
	JMP  es32

es16:
	TESTQ CX, CX
	JEQ   esdone
	VMOVUPS (SI), Z4
	VSUBPS Z18, Z4, Z4
	EXP16(Z4, Z5, Z6, Z7)
	VADDPS Z4, Z0, Z0

esdone:
	VADDPS Z1, Z0, Z0
	HSUM16
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func siluAVX512(dst, x []float32)
TEXT ·siluAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	EXPCONSTS
	SHRQ $4, CX

silu32:
	CMPQ CX, $2
	JLT  silu16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z5
	SILU16(Z0, Z1, Z2, Z3, Z4)
	SILU16(Z5, Z6, Z7, Z8, Z9)
	VMOVUPS Z0, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  silu32

silu16:
	TESTQ CX, CX
	JEQ   siludone
	VMOVUPS (SI), Z0
	SILU16(Z0, Z1, Z2, Z3, Z4)
	VMOVUPS Z0, (DI)

siludone:
	VZEROUPPER
	RET

// func swigluAVX512(dst, gate, up []float32)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ gate_base+24(FP), SI
	MOVQ gate_len+32(FP), CX
	MOVQ up_base+48(FP), DX
	EXPCONSTS
	SHRQ $4, CX

swi32:
	CMPQ CX, $2
	JLT  swi16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z5
	SILU16(Z0, Z1, Z2, Z3, Z4)
	SILU16(Z5, Z6, Z7, Z8, Z9)
	VMULPS (DX), Z0, Z0
	VMULPS 64(DX), Z5, Z5
	VMOVUPS Z0, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $2, CX
	JMP  swi32

swi16:
	TESTQ CX, CX
	JEQ   swidone
	VMOVUPS (SI), Z0
	SILU16(Z0, Z1, Z2, Z3, Z4)
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)

swidone:
	VZEROUPPER
	RET

// func swigluBwdAVX512(dg, du, dy, gate, up []float32)
// σ = 1/(1+exp(-g)); du = (dy·g)·σ; dg = ((dy·u)·σ)·(1+g·(1−σ)).
TEXT ·swigluBwdAVX512(SB), NOSPLIT, $0-120
	MOVQ dg_base+0(FP), DI
	MOVQ du_base+24(FP), R8
	MOVQ dy_base+48(FP), SI
	MOVQ dy_len+56(FP), CX
	MOVQ gate_base+72(FP), DX
	MOVQ up_base+96(FP), R9
	EXPCONSTS
	SHRQ $4, CX

sbw16:
	TESTQ CX, CX
	JEQ   sbwdone
	VMOVUPS (DX), Z0
	VXORPS  Z19, Z0, Z1
	EXP16(Z1, Z2, Z3, Z4)
	VADDPS  Z20, Z1, Z1
	VDIVPS  Z1, Z20, Z1
	VMOVUPS (SI), Z5
	VMULPS  Z0, Z5, Z6
	VMULPS  Z1, Z6, Z6
	VMOVUPS Z6, (R8)
	VMULPS  (R9), Z5, Z7
	VMULPS  Z1, Z7, Z7
	VSUBPS  Z1, Z20, Z8
	VMULPS  Z0, Z8, Z8
	VADDPS  Z20, Z8, Z8
	VMULPS  Z8, Z7, Z7
	VMOVUPS Z7, (DI)
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R9
	DECQ    CX
	JMP     sbw16

sbwdone:
	VZEROUPPER
	RET
