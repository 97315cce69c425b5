//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX2+FMA exp family: exp(x-shift) with its sum, silu and swiglu. Each
// routine handles the first len - len%8 elements; vec_tail.go does the
// rest. Two vectors are in flight per iteration so the two ~24-instruction
// dependency chains overlap. VMINPS/VMAXPS return their FIRST Go operand
// when either input is NaN, which is how a NaN gets through the clamp.

#include "vec_exp_amd64.h"

// func expShiftSumAVX2(dst, x []float32, shift float32) float32
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-60
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS shift+48(FP), Y13
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	VXORPS Y12, Y12, Y12
	VXORPS Y11, Y11, Y11
	SHRQ $3, CX

ess16:
	CMPQ CX, $2
	JLT  ess8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y4
	VSUBPS Y13, Y0, Y0
	VSUBPS Y13, Y4, Y4
	EXP8(Y0, Y1, Y2, Y3)
	EXP8(Y4, Y5, Y6, Y7)
	VMOVUPS Y0, (DI)
	VMOVUPS Y4, 32(DI)
	VADDPS Y0, Y12, Y12
	VADDPS Y4, Y11, Y11
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  ess16

ess8:
	TESTQ CX, CX
	JEQ   essdone
	VMOVUPS (SI), Y0
	VSUBPS Y13, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)
	VADDPS Y0, Y12, Y12

essdone:
	VADDPS Y11, Y12, Y12
	HSUM8(Y12, X12, X1)
	VMOVSS X12, ret+56(FP)
	VZEROUPPER
	RET

// func expSumAVX2(x []float32, shift float32) float32
TEXT ·expSumAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS shift+24(FP), Y13
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	VXORPS Y12, Y12, Y12
	VXORPS Y11, Y11, Y11
	SHRQ $3, CX

es16:
	CMPQ CX, $2
	JLT  es8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y4
	VSUBPS Y13, Y0, Y0
	VSUBPS Y13, Y4, Y4
	EXP8(Y0, Y1, Y2, Y3)
	EXP8(Y4, Y5, Y6, Y7)
	VADDPS Y0, Y12, Y12
	VADDPS Y4, Y11, Y11
	ADDQ $64, SI
	SUBQ $2, CX
	JMP  es16

es8:
	TESTQ CX, CX
	JEQ   esdone
	VMOVUPS (SI), Y0
	VSUBPS Y13, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS Y0, Y12, Y12

esdone:
	VADDPS Y11, Y12, Y12
	HSUM8(Y12, X12, X1)
	VMOVSS X12, ret+32(FP)
	VZEROUPPER
	RET

// func siluAVX2(dst, x []float32)
TEXT ·siluAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VMOVUPS signBit<>(SB), Y13
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	SHRQ $3, CX

silu16:
	CMPQ CX, $2
	JLT  silu8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y5
	SILU8(Y0, Y1, Y2, Y3, Y4)
	SILU8(Y5, Y6, Y7, Y8, Y9)
	VMOVUPS Y0, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  silu16

silu8:
	TESTQ CX, CX
	JEQ   siludone
	VMOVUPS (SI), Y0
	SILU8(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS Y0, (DI)

siludone:
	VZEROUPPER
	RET

// func swigluAVX2(dst, gate, up []float32)
TEXT ·swigluAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ gate_base+24(FP), SI
	MOVQ gate_len+32(FP), CX
	MOVQ up_base+48(FP), DX
	VMOVUPS signBit<>(SB), Y13
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	SHRQ $3, CX

swi16:
	CMPQ CX, $2
	JLT  swi8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y5
	SILU8(Y0, Y1, Y2, Y3, Y4)
	SILU8(Y5, Y6, Y7, Y8, Y9)
	VMULPS (DX), Y0, Y0
	VMULPS 32(DX), Y5, Y5
	VMOVUPS Y0, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  swi16

swi8:
	TESTQ CX, CX
	JEQ   swidone
	VMOVUPS (SI), Y0
	SILU8(Y0, Y1, Y2, Y3, Y4)
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)

swidone:
	VZEROUPPER
	RET
