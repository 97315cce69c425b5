//go:build !purego

#include "textflag.h"
#include "vec_arm64.h"

// NEON exp family: exp(x-shift) with its sum, silu and swiglu. Each
// routine handles the first len - len%4 elements; vec_tail.go does the
// rest.

#include "vec_exp_arm64.h"

// func expShiftSumNEON(dst, x []float32, shift float32) float32
TEXT ·expShiftSumNEON(SB), NOSPLIT, $0-60
	MOVD  dst_base+0(FP), R1
	MOVD  x_base+24(FP), R0
	MOVD  x_len+32(FP), R2
	FMOVS shift+48(FP), F18
	VDUP  V18.S[0], V18.S4
	EXPCONSTS
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	LSR  $2, R2

ess8:
	CMP $2, R2
	BLT ess4
	VLD1.P 32(R0), [V4.S4, V5.S4]
	FSUB4(18, 4, 4)
	FSUB4(18, 5, 5)
	EXP4(4, 6, 7, 8)
	EXP4(5, 9, 10, 11)
	VST1.P [V4.S4, V5.S4], 32(R1)
	FADD4(4, 0, 0)
	FADD4(5, 1, 1)
	SUB $2, R2
	B   ess8

ess4:
	CBZ R2, essdone
	VLD1.P 16(R0), [V4.S4]
	FSUB4(18, 4, 4)
	EXP4(4, 6, 7, 8)
	VST1.P [V4.S4], 16(R1)
	FADD4(4, 0, 0)

essdone:
	FADD4(1, 0, 0)
	FADDP4(0, 0, 0)
	FADDP4(0, 0, 0)
	FMOVS F0, ret+56(FP)
	RET

// func expSumNEON(x []float32, shift float32) float32
TEXT ·expSumNEON(SB), NOSPLIT, $0-36
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R2
	FMOVS shift+24(FP), F18
	VDUP  V18.S[0], V18.S4
	EXPCONSTS
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	LSR  $2, R2

es8:
	CMP $2, R2
	BLT es4
	VLD1.P 32(R0), [V4.S4, V5.S4]
	FSUB4(18, 4, 4)
	FSUB4(18, 5, 5)
	EXP4(4, 6, 7, 8)
	EXP4(5, 9, 10, 11)
	FADD4(4, 0, 0)
	FADD4(5, 1, 1)
	SUB $2, R2
	B   es8

es4:
	CBZ R2, esdone
	VLD1.P 16(R0), [V4.S4]
	FSUB4(18, 4, 4)
	EXP4(4, 6, 7, 8)
	FADD4(4, 0, 0)

esdone:
	FADD4(1, 0, 0)
	FADDP4(0, 0, 0)
	FADDP4(0, 0, 0)
	FMOVS F0, ret+32(FP)
	RET

// func siluNEON(dst, x []float32)
TEXT ·siluNEON(SB), NOSPLIT, $0-48
	MOVD dst_base+0(FP), R1
	MOVD x_base+24(FP), R0
	MOVD x_len+32(FP), R2
	EXPCONSTS
	LSR  $2, R2

silu8:
	CMP $2, R2
	BLT silu4
	VLD1.P 32(R0), [V0.S4, V1.S4]
	SILU4(0, 2, 3, 4, 5)
	SILU4(1, 6, 7, 8, 9)
	VST1.P [V0.S4, V1.S4], 32(R1)
	SUB $2, R2
	B   silu8

silu4:
	CBZ R2, siludone
	VLD1.P 16(R0), [V0.S4]
	SILU4(0, 2, 3, 4, 5)
	VST1.P [V0.S4], 16(R1)

siludone:
	RET

// func swigluNEON(dst, gate, up []float32)
TEXT ·swigluNEON(SB), NOSPLIT, $0-72
	MOVD dst_base+0(FP), R1
	MOVD gate_base+24(FP), R0
	MOVD gate_len+32(FP), R2
	MOVD up_base+48(FP), R3
	EXPCONSTS
	LSR  $2, R2

swi8:
	CMP $2, R2
	BLT swi4
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 32(R3), [V10.S4, V11.S4]
	SILU4(0, 2, 3, 4, 5)
	SILU4(1, 6, 7, 8, 9)
	FMUL4(10, 0, 0)
	FMUL4(11, 1, 1)
	VST1.P [V0.S4, V1.S4], 32(R1)
	SUB $2, R2
	B   swi8

swi4:
	CBZ R2, swidone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R3), [V10.S4]
	SILU4(0, 2, 3, 4, 5)
	FMUL4(10, 0, 0)
	VST1.P [V0.S4], 16(R1)

swidone:
	RET
