//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX2+FMA tanh-based kernels (Gemma): soft-cap c·tanh(x/c) and GeGLU
// (gelu_tanh(g)·up) with their backwards, one 8-float vector per
// iteration, with the exp of vec_exp_amd64.h (Y15 = expHi, Y14 = expLo).
// Each follows its reference in vec_ref.go operation for operation, as
// vec_tanh_avx512_amd64.s does. Each routine handles the first
// len - len%8 elements.

#include "vec_exp_amd64.h"

V8(two8, 0x40000000)
V8(small8, 0x3e99999a)  // 0.3: |x/c| below it takes the Taylor series
V8(t1x8, 0xbeaaaaab)    // -1/3
V8(t2x8, 0x3e088889)    // 2/15
V8(t3x8, 0xbd5d0dd1)    // -17/315
V8(t4x8, 0x3cb327a4)    // 62/2835
V8(t5x8, 0xbc11371b)    // -1382/155925
V8(geluA8, 0x3d372713)  // 0.044715
V8(geluA3x8, 0x3e095d4f) // 3·0.044715
V8(geluC8, 0x3f4c422a)  // √(2/π)
V8(geluN2C8, 0xbfcc422a) // −2·√(2/π)
V8(clamp8, 0x461c4000)  // 1e4
V8(nclamp8, 0xc61c4000) // −1e4

// GELUSIG8 sets S = σ(2v) = 1/(1 + exp(−2·√(2/π)·(G + 0.044715·G³)))
// from G (kept); N, P, T are scratch.
#define GELUSIG8(G, S, N, P, T) \
	VMULPS geluA8<>(SB), G, S; \
	VMULPS G, S, S; \
	VMULPS G, S, S; \
	VADDPS S, G, S; \
	VMULPS geluN2C8<>(SB), S, S; \
	EXP8(S, N, P, T); \
	VADDPS one<>(SB), S, S; \
	VMOVUPS one<>(SB), T; \
	VDIVPS S, T, S

// func softcapAVX2(dst, x []float32, c float32)
TEXT ·softcapAVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	VMOVUPS signBit<>(SB), Y13
	VBROADCASTSS c+48(FP), Y9     // c
	VMOVUPS one<>(SB), Y10
	VDIVPS  Y9, Y10, Y10          // inv = 1/c
	VMOVUPS two8<>(SB), Y11
	VDIVPS  Y9, Y11, Y11          // k = 2/c
	VADDPS  Y9, Y9, Y12           // 2c
	SHRQ $3, CX

sc8:
	TESTQ CX, CX
	JEQ   scdone
	VMOVUPS (SI), Y0
	VMULPS  Y10, Y0, Y1           // u = x/c
	VMULPS  Y11, Y0, Y2           // 2x/c
	EXP8(Y2, Y3, Y4, Y5)
	VADDPS  one<>(SB), Y2, Y2
	VDIVPS  Y2, Y12, Y2           // 2c/(1+e)
	VSUBPS  Y2, Y9, Y2            // c − 2c/(1+e)
	VMULPS  Y1, Y1, Y6            // u²
	VMOVUPS t5x8<>(SB), Y7
	VFMADD213PS t4x8<>(SB), Y6, Y7
	VFMADD213PS t3x8<>(SB), Y6, Y7
	VFMADD213PS t2x8<>(SB), Y6, Y7
	VFMADD213PS t1x8<>(SB), Y6, Y7
	VFMADD213PS one<>(SB), Y6, Y7
	VMULPS  Y7, Y0, Y7            // x·(1 + u²·P(u²))
	VANDNPS Y1, Y13, Y1           // |u|
	VCMPPS  $1, small8<>(SB), Y1, Y8 // |u| < 0.3
	VBLENDVPS Y8, Y7, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JMP     sc8

scdone:
	VZEROUPPER
	RET

// func softcapBwdAVX2(dx, dy, y []float32, c float32)
TEXT ·softcapBwdAVX2(SB), NOSPLIT, $0-76
	MOVQ dx_base+0(FP), DI
	MOVQ dy_base+24(FP), SI
	MOVQ y_base+48(FP), DX
	MOVQ y_len+56(FP), CX
	VBROADCASTSS c+72(FP), Y9
	VMOVUPS one<>(SB), Y12
	VDIVPS  Y9, Y12, Y10          // 1/c
	VXORPS  signBit<>(SB), Y9, Y11 // −c
	SHRQ $3, CX

scb8:
	TESTQ CX, CX
	JEQ   scbdone
	VMOVUPS (DX), Y0              // y
	VMULPS  Y10, Y0, Y2           // t = y/c
	VMULPS  Y2, Y2, Y2
	VSUBPS  Y2, Y12, Y2           // 1 − t²
	VMULPS  (SI), Y2, Y2          // dy·(1 − t²)
	VCMPPS  $1, Y11, Y0, Y3       // y < −c: masked
	VANDNPS Y2, Y3, Y2            // 0 there
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JMP     scb8

scbdone:
	VZEROUPPER
	RET

// func gegluAVX2(dst, gate, up []float32)
TEXT ·gegluAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ gate_base+24(FP), SI
	MOVQ gate_len+32(FP), CX
	MOVQ up_base+48(FP), DX
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	SHRQ $3, CX

gg8:
	TESTQ CX, CX
	JEQ   ggdone
	VMOVUPS (SI), Y0
	GELUSIG8(Y0, Y1, Y2, Y3, Y4)
	VMULPS  Y1, Y0, Y0            // g·σ
	VMULPS  (DX), Y0, Y0          // ·up
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JMP     gg8

ggdone:
	VZEROUPPER
	RET

// func gegluBwdAVX2(dg, du, dy, gate, up []float32)
// du = (dy·g)·s; dg = (dy·up)·(s + ((2g'·s)·(1−s))·v'), g' = g clamped to
// ±1e4, v' = √(2/π)·(1 + (3·0.044715·g')·g').
TEXT ·gegluBwdAVX2(SB), NOSPLIT, $0-120
	MOVQ dg_base+0(FP), DI
	MOVQ du_base+24(FP), R8
	MOVQ dy_base+48(FP), SI
	MOVQ dy_len+56(FP), CX
	MOVQ gate_base+72(FP), DX
	MOVQ up_base+96(FP), R9
	VMOVUPS expHi<>(SB), Y15
	VMOVUPS expLo<>(SB), Y14
	VMOVUPS clamp8<>(SB), Y9
	VMOVUPS nclamp8<>(SB), Y10
	VMOVUPS one<>(SB), Y11
	SHRQ $3, CX

gb8:
	TESTQ CX, CX
	JEQ   gbdone
	VMOVUPS (DX), Y0              // g
	GELUSIG8(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS (SI), Y5              // dy
	VMULPS  Y0, Y5, Y6
	VMULPS  Y1, Y6, Y6
	VMOVUPS Y6, (R8)              // du
	VMINPS  Y0, Y9, Y7            // g' (VMINPS/VMAXPS pass a NaN first operand)
	VMAXPS  Y7, Y10, Y7
	VMULPS  geluA3x8<>(SB), Y7, Y8
	VMULPS  Y7, Y8, Y8
	VADDPS  Y11, Y8, Y8
	VMULPS  geluC8<>(SB), Y8, Y8  // v'
	VADDPS  Y7, Y7, Y2            // 2g'
	VMULPS  Y1, Y2, Y2
	VSUBPS  Y1, Y11, Y3           // 1 − s
	VMULPS  Y3, Y2, Y2
	VMULPS  Y8, Y2, Y2
	VADDPS  Y2, Y1, Y2            // s + term
	VMULPS  (R9), Y5, Y6          // dy·up
	VMULPS  Y2, Y6, Y6
	VMOVUPS Y6, (DI)              // dg
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, R9
	DECQ    CX
	JMP     gb8

gbdone:
	VZEROUPPER
	RET
