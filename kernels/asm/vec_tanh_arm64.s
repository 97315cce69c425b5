//go:build !purego

#include "textflag.h"
#include "vec_arm64.h"

// NEON tanh-based kernels (Gemma): soft-cap c·tanh(x/c) and GeGLU
// (gelu_tanh(g)·up) with their backwards, one 4-float vector per
// iteration, with the exp of vec_exp_arm64.h (constants in V19-V31, V20 =
// 1). Each follows its reference in vec_ref.go operation for operation, as
// vec_tanh_avx512_amd64.s does. Each routine handles the first
// len - len%4 elements.

#include "vec_exp_arm64.h"

// Soft-cap constants, loaded into V13-V18 in this order.
DATA tanhTab<>+0(SB)/4, $0xbc11371b  // V13 -1382/155925
DATA tanhTab<>+4(SB)/4, $0x3cb327a4  // V14 62/2835
DATA tanhTab<>+8(SB)/4, $0xbd5d0dd1  // V15 -17/315
DATA tanhTab<>+12(SB)/4, $0x3e088889 // V16 2/15
DATA tanhTab<>+16(SB)/4, $0xbeaaaaab // V17 -1/3
DATA tanhTab<>+20(SB)/4, $0x3e99999a // V18 0.3
GLOBL tanhTab<>(SB), RODATA|NOPTR, $24

// GeGLU constants, loaded into V16, V17, V12-V15 in this order.
DATA geluTab<>+0(SB)/4, $0x3d372713  // V16 0.044715
DATA geluTab<>+4(SB)/4, $0xbfcc422a  // V17 −2·√(2/π)
DATA geluTab<>+8(SB)/4, $0x461c4000  // V12 1e4
DATA geluTab<>+12(SB)/4, $0xc61c4000 // V13 −1e4
DATA geluTab<>+16(SB)/4, $0x3e095d4f // V14 3·0.044715
DATA geluTab<>+20(SB)/4, $0x3f4c422a // V15 √(2/π)
GLOBL geluTab<>(SB), RODATA|NOPTR, $24

#define GELUCONSTS \
	MOVD $geluTab<>(SB), R10; \
	VLD1R.P 4(R10), [V16.S4]; \
	VLD1R.P 4(R10), [V17.S4]; \
	VLD1R.P 4(R10), [V12.S4]; \
	VLD1R.P 4(R10), [V13.S4]; \
	VLD1R.P 4(R10), [V14.S4]; \
	VLD1R.P 4(R10), [V15.S4]

// GELUSIG4 sets s = σ(2v) = 1/(1 + exp(−2·√(2/π)·(g + 0.044715·g³)))
// from g (kept); n, p, t are scratch.
#define GELUSIG4(g, s, n, p, t) \
	FMUL4(16, g, s); \
	FMUL4(g, s, s); \
	FMUL4(g, s, s); \
	FADD4(s, g, s); \
	FMUL4(17, s, s); \
	EXP4(s, n, p, t); \
	FADD4(20, s, s); \
	FDIV4(s, 20, s)

// func softcapNEON(dst, x []float32, c float32)
TEXT ·softcapNEON(SB), NOSPLIT, $0-52
	MOVD  dst_base+0(FP), R1
	MOVD  x_base+24(FP), R0
	MOVD  x_len+32(FP), R2
	EXPCONSTS
	FMOVS c+48(FP), F9
	VDUP  V9.S[0], V9.S4   // c
	FDIV4(9, 20, 10)       // 1/c
	FADD4(20, 20, 11)
	FDIV4(9, 11, 11)       // 2/c
	FADD4(9, 9, 12)        // 2c
	MOVD  $tanhTab<>(SB), R10
	VLD1R.P 4(R10), [V13.S4]
	VLD1R.P 4(R10), [V14.S4]
	VLD1R.P 4(R10), [V15.S4]
	VLD1R.P 4(R10), [V16.S4]
	VLD1R.P 4(R10), [V17.S4]
	VLD1R.P 4(R10), [V18.S4]
	LSR   $2, R2

sc4:
	CBZ    R2, scdone
	VLD1.P 16(R0), [V0.S4]
	FMUL4(10, 0, 1)        // u = x/c
	FMUL4(11, 0, 2)        // 2x/c
	EXP4(2, 3, 4, 5)
	FADD4(20, 2, 2)
	FDIV4(2, 12, 2)        // 2c/(1+e)
	FSUB4(2, 9, 2)         // c − 2c/(1+e)
	FMUL4(1, 1, 6)         // u²
	MOV16(14, 7)
	FMLA4(13, 6, 7)
	MOV16(15, 8)
	FMLA4(7, 6, 8)
	MOV16(16, 7)
	FMLA4(8, 6, 7)
	MOV16(17, 8)
	FMLA4(7, 6, 8)
	MOV16(20, 7)
	FMLA4(8, 6, 7)         // 1 + u²·P(u²)
	FMUL4(7, 0, 7)         // x·(…)
	FABS4(1, 1)
	FCMGT4(1, 18, 1)       // 0.3 > |u|
	BIT16(1, 7, 2)
	VST1.P [V2.S4], 16(R1)
	SUB    $1, R2
	B      sc4

scdone:
	RET

// func softcapBwdNEON(dx, dy, y []float32, c float32)
TEXT ·softcapBwdNEON(SB), NOSPLIT, $0-76
	MOVD  dx_base+0(FP), R1
	MOVD  dy_base+24(FP), R0
	MOVD  y_base+48(FP), R3
	MOVD  y_len+56(FP), R2
	EXPCONSTS
	FMOVS c+72(FP), F9
	VDUP  V9.S[0], V9.S4
	FDIV4(9, 20, 10)       // 1/c
	FNEG4(9, 11)           // −c
	LSR   $2, R2

scb4:
	CBZ    R2, scbdone
	VLD1.P 16(R3), [V0.S4] // y
	VLD1.P 16(R0), [V1.S4] // dy
	FMUL4(10, 0, 2)        // t = y/c
	FMUL4(2, 2, 2)
	FSUB4(2, 20, 2)        // 1 − t²
	FMUL4(1, 2, 2)         // ·dy
	FCMGT4(0, 11, 3)       // −c > y: masked
	BIC16(3, 2, 2)         // 0 there
	VST1.P [V2.S4], 16(R1)
	SUB    $1, R2
	B      scb4

scbdone:
	RET

// func gegluNEON(dst, gate, up []float32)
TEXT ·gegluNEON(SB), NOSPLIT, $0-72
	MOVD dst_base+0(FP), R1
	MOVD gate_base+24(FP), R0
	MOVD gate_len+32(FP), R2
	MOVD up_base+48(FP), R3
	EXPCONSTS
	GELUCONSTS
	LSR  $2, R2

gg4:
	CBZ    R2, ggdone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R3), [V10.S4]
	GELUSIG4(0, 1, 2, 3, 4)
	FMUL4(1, 0, 0)         // g·σ
	FMUL4(10, 0, 0)        // ·up
	VST1.P [V0.S4], 16(R1)
	SUB    $1, R2
	B      gg4

ggdone:
	RET

// func gegluBwdNEON(dg, du, dy, gate, up []float32)
// du = (dy·g)·s; dg = (dy·up)·(s + ((2g'·s)·(1−s))·v'), g' = g clamped to
// ±1e4, v' = √(2/π)·(1 + (3·0.044715·g')·g').
TEXT ·gegluBwdNEON(SB), NOSPLIT, $0-120
	MOVD dg_base+0(FP), R0
	MOVD du_base+24(FP), R1
	MOVD dy_base+48(FP), R2
	MOVD dy_len+56(FP), R5
	MOVD gate_base+72(FP), R3
	MOVD up_base+96(FP), R4
	EXPCONSTS
	GELUCONSTS
	LSR  $2, R5

gb4:
	CBZ    R5, gbdone
	VLD1.P 16(R3), [V0.S4] // g
	VLD1.P 16(R2), [V5.S4] // dy
	VLD1.P 16(R4), [V9.S4] // up
	GELUSIG4(0, 1, 2, 3, 4)
	FMUL4(0, 5, 6)
	FMUL4(1, 6, 6)
	VST1.P [V6.S4], 16(R1) // du
	FMIN4(12, 0, 7)        // g' (FMIN/FMAX propagate NaN)
	FMAX4(13, 7, 7)
	FMUL4(14, 7, 8)
	FMUL4(7, 8, 8)
	FADD4(20, 8, 8)
	FMUL4(15, 8, 8)        // v'
	FADD4(7, 7, 2)         // 2g'
	FMUL4(1, 2, 2)
	FSUB4(1, 20, 3)        // 1 − s
	FMUL4(3, 2, 2)
	FMUL4(8, 2, 2)
	FADD4(2, 1, 2)         // s + term
	FMUL4(9, 5, 6)         // dy·up
	FMUL4(2, 6, 6)
	VST1.P [V6.S4], 16(R0) // dg
	SUB    $1, R5
	B      gb4

gbdone:
	RET
