//go:build !purego

#include "textflag.h"
#include "vec_arm64.h"

// NEON exp family: exp(x-shift) with its sum, silu and swiglu. Each
// routine handles the first len - len%4 elements; vec_tail.go does the
// rest.

// exp constants (see vec_ref.go), loaded in this order into V31 down to
// V19 by EXPCONSTS.
DATA expTab<>+0(SB)/4, $0x42b20000  // V31 hi = 89
DATA expTab<>+4(SB)/4, $0xc2d00000  // V30 lo = -104
DATA expTab<>+8(SB)/4, $0x3fb8aa3b  // V29 log2(e)
DATA expTab<>+12(SB)/4, $0x3f318000 // V28 C1
DATA expTab<>+16(SB)/4, $0xb95e8083 // V27 C2
DATA expTab<>+20(SB)/4, $0x39506967 // V26 P0
DATA expTab<>+24(SB)/4, $0x3ab743ce // V25 P1
DATA expTab<>+28(SB)/4, $0x3c088908 // V24 P2
DATA expTab<>+32(SB)/4, $0x3d2aa9c1 // V23 P3
DATA expTab<>+36(SB)/4, $0x3e2aaaaa // V22 P4
DATA expTab<>+40(SB)/4, $0x3f000000 // V21 P5
DATA expTab<>+44(SB)/4, $0x3f800000 // V20 1
DATA expTab<>+48(SB)/4, $0x0000007f // V19 127
GLOBL expTab<>(SB), RODATA|NOPTR, $52

#define EXPCONSTS \
	MOVD $expTab<>(SB), R9; \
	VLD1R.P 4(R9), [V31.S4]; \
	VLD1R.P 4(R9), [V30.S4]; \
	VLD1R.P 4(R9), [V29.S4]; \
	VLD1R.P 4(R9), [V28.S4]; \
	VLD1R.P 4(R9), [V27.S4]; \
	VLD1R.P 4(R9), [V26.S4]; \
	VLD1R.P 4(R9), [V25.S4]; \
	VLD1R.P 4(R9), [V24.S4]; \
	VLD1R.P 4(R9), [V23.S4]; \
	VLD1R.P 4(R9), [V22.S4]; \
	VLD1R.P 4(R9), [V21.S4]; \
	VLD1R.P 4(R9), [V20.S4]; \
	VLD1R.P 4(R9), [V19.S4]

// EXP4 replaces register x with exp(x); n, p, t are scratch. FMIN/FMAX
// return NaN when either input is NaN, so NaN passes the clamp. The
// polynomial alternates between p and t because FMLA accumulates into its
// destination: t = P1 + P0*r, p = P2 + t*r, ...
#define EXP4(x, n, p, t) \
	FMIN4(31, x, x); \
	FMAX4(30, x, x); \
	FMUL4(29, x, n); \
	FRINTN4(n, n); \
	FMLS4(28, n, x); \
	FMLS4(27, n, x); \
	MOV16(25, t); \
	FMLA4(26, x, t); \
	MOV16(24, p); \
	FMLA4(t, x, p); \
	MOV16(23, t); \
	FMLA4(p, x, t); \
	MOV16(22, p); \
	FMLA4(t, x, p); \
	MOV16(21, t); \
	FMLA4(p, x, t); \
	FMUL4(x, x, p); \
	FMLA4(t, p, x); \
	FADD4(20, x, x); \
	FCVTZS4(n, n); \
	SSHR4_1(n, t); \
	SUB4(t, n, n); \
	ADD4(19, t, t); \
	SHL4_23(t, t); \
	ADD4(19, n, n); \
	SHL4_23(n, n); \
	FMUL4(t, x, x); \
	FMUL4(n, x, x)

// SILU4 replaces x with x/(1+exp(-x)); e, n, p, t are scratch.
#define SILU4(x, e, n, p, t) \
	FNEG4(x, e); \
	EXP4(e, n, p, t); \
	FADD4(20, e, e); \
	FDIV4(e, x, x)

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
