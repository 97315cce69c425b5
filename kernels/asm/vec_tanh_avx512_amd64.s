//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// AVX-512 tanh-based kernels (Gemma): soft-cap c·tanh(x/c) and GeGLU
// (gelu_tanh(g)·up) with their backwards, one 16-float vector per
// iteration, with the exp of vec_exp_avx512_amd64.h (constants in
// Z19-Z31). Each follows its reference in vec_ref.go operation for
// operation (softcapf, geluSigmoid, GeGLUBackwardRef); the only FMAs are
// exp's and the soft-cap's Taylor polynomial. Each routine handles the
// first len - len%16 elements.

#include "vec_exp_avx512_amd64.h"

C4(two16, 0x40000000)
C4(small16, 0x3e99999a)  // 0.3: |x/c| below it takes the Taylor series
C4(t1x16, 0xbeaaaaab)    // -1/3
C4(t2x16, 0x3e088889)    // 2/15
C4(t3x16, 0xbd5d0dd1)    // -17/315
C4(t4x16, 0x3cb327a4)    // 62/2835
C4(t5x16, 0xbc11371b)    // -1382/155925
C4(geluA16, 0x3d372713)  // 0.044715
C4(geluA3x16, 0x3e095d4f) // 3·0.044715
C4(geluC16, 0x3f4c422a)  // √(2/π)
C4(geluN2C16, 0xbfcc422a) // −2·√(2/π)
C4(clamp16, 0x461c4000)  // 1e4
C4(nclamp16, 0xc61c4000) // −1e4

// GELUSIG16 sets S = σ(2v) = 1/(1 + exp(−2·√(2/π)·(G + 0.044715·G³)))
// from G (kept); N, P, T are scratch. Needs geluA in Z16 and −2√(2/π)
// in Z17.
#define GELUSIG16(G, S, N, P, T) \
	VMULPS Z16, G, S; \
	VMULPS G, S, S; \
	VMULPS G, S, S; \
	VADDPS S, G, S; \
	VMULPS Z17, S, S; \
	EXP16(S, N, P, T); \
	VADDPS Z20, S, S; \
	VDIVPS S, Z20, S

// func softcapAVX512(dst, x []float32, c float32)
TEXT ·softcapAVX512(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	EXPCONSTS
	VBROADCASTSS c+48(FP), Z9     // c
	VDIVPS       Z9, Z20, Z10     // inv = 1/c
	VBROADCASTSS two16<>(SB), Z11
	VDIVPS       Z9, Z11, Z11     // k = 2/c
	VADDPS       Z9, Z9, Z12      // 2c
	VBROADCASTSS t5x16<>(SB), Z13
	VBROADCASTSS t4x16<>(SB), Z14
	VBROADCASTSS t3x16<>(SB), Z15
	VBROADCASTSS t2x16<>(SB), Z16
	VBROADCASTSS t1x16<>(SB), Z17
	VBROADCASTSS small16<>(SB), Z18
	SHRQ $4, CX

sc16:
	TESTQ CX, CX
	JEQ   scdone
	VMOVUPS (SI), Z0
	VMULPS  Z10, Z0, Z1          // u = x/c
	VMULPS  Z11, Z0, Z2          // 2x/c
	EXP16(Z2, Z3, Z4, Z5)
	VADDPS  Z20, Z2, Z2
	VDIVPS  Z2, Z12, Z2          // 2c/(1+e)
	VSUBPS  Z2, Z9, Z2           // c − 2c/(1+e)
	VMULPS  Z1, Z1, Z6           // u²
	VMOVAPS Z13, Z7
	VFMADD213PS Z14, Z6, Z7
	VFMADD213PS Z15, Z6, Z7
	VFMADD213PS Z16, Z6, Z7
	VFMADD213PS Z17, Z6, Z7
	VFMADD213PS Z20, Z6, Z7
	VMULPS  Z7, Z0, Z7           // x·(1 + u²·P(u²))
	VANDNPS Z1, Z19, Z1          // |u|
	VCMPPS  $1, Z18, Z1, K1      // |u| < 0.3
	VMOVAPS Z7, K1, Z2
	VMOVUPS Z2, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JMP     sc16

scdone:
	VZEROUPPER
	RET

// func softcapBwdAVX512(dx, dy, y []float32, c float32)
TEXT ·softcapBwdAVX512(SB), NOSPLIT, $0-76
	MOVQ dx_base+0(FP), DI
	MOVQ dy_base+24(FP), SI
	MOVQ y_base+48(FP), DX
	MOVQ y_len+56(FP), CX
	VBROADCASTSS one16<>(SB), Z20
	VBROADCASTSS sign16<>(SB), Z19
	VBROADCASTSS c+72(FP), Z9
	VDIVPS       Z9, Z20, Z10    // 1/c
	VXORPS       Z19, Z9, Z11    // −c
	VXORPS       Z8, Z8, Z8
	SHRQ $4, CX

scb16:
	TESTQ CX, CX
	JEQ   scbdone
	VMOVUPS (DX), Z0             // y
	VMULPS  Z10, Z0, Z2          // t = y/c
	VMULPS  Z2, Z2, Z2
	VSUBPS  Z2, Z20, Z2          // 1 − t²
	VMULPS  (SI), Z2, Z2         // dy·(1 − t²)
	VCMPPS  $1, Z11, Z0, K1      // y < −c: masked
	VMOVAPS Z8, K1, Z2
	VMOVUPS Z2, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    CX
	JMP     scb16

scbdone:
	VZEROUPPER
	RET

// func gegluAVX512(dst, gate, up []float32)
TEXT ·gegluAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ gate_base+24(FP), SI
	MOVQ gate_len+32(FP), CX
	MOVQ up_base+48(FP), DX
	EXPCONSTS
	VBROADCASTSS geluA16<>(SB), Z16
	VBROADCASTSS geluN2C16<>(SB), Z17
	SHRQ $4, CX

gg16:
	TESTQ CX, CX
	JEQ   ggdone
	VMOVUPS (SI), Z0
	GELUSIG16(Z0, Z1, Z2, Z3, Z4)
	VMULPS  Z1, Z0, Z0           // g·σ
	VMULPS  (DX), Z0, Z0         // ·up
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JMP     gg16

ggdone:
	VZEROUPPER
	RET

// func gegluBwdAVX512(dg, du, dy, gate, up []float32)
// du = (dy·g)·s; dg = (dy·up)·(s + ((2g'·s)·(1−s))·v'), g' = g clamped to
// ±1e4, v' = √(2/π)·(1 + (3·0.044715·g')·g').
TEXT ·gegluBwdAVX512(SB), NOSPLIT, $0-120
	MOVQ dg_base+0(FP), DI
	MOVQ du_base+24(FP), R8
	MOVQ dy_base+48(FP), SI
	MOVQ dy_len+56(FP), CX
	MOVQ gate_base+72(FP), DX
	MOVQ up_base+96(FP), R9
	EXPCONSTS
	VBROADCASTSS geluA16<>(SB), Z16
	VBROADCASTSS geluN2C16<>(SB), Z17
	VBROADCASTSS clamp16<>(SB), Z12
	VBROADCASTSS nclamp16<>(SB), Z13
	VBROADCASTSS geluA3x16<>(SB), Z14
	VBROADCASTSS geluC16<>(SB), Z15
	SHRQ $4, CX

gb16:
	TESTQ CX, CX
	JEQ   gbdone
	VMOVUPS (DX), Z0             // g
	GELUSIG16(Z0, Z1, Z2, Z3, Z4)
	VMOVUPS (SI), Z5             // dy
	VMULPS  Z0, Z5, Z6
	VMULPS  Z1, Z6, Z6
	VMOVUPS Z6, (R8)             // du
	VMINPS  Z0, Z12, Z7          // g' (VMINPS/VMAXPS pass a NaN first operand)
	VMAXPS  Z7, Z13, Z7
	VMULPS  Z14, Z7, Z8
	VMULPS  Z7, Z8, Z8
	VADDPS  Z20, Z8, Z8
	VMULPS  Z15, Z8, Z8          // v'
	VADDPS  Z7, Z7, Z2           // 2g'
	VMULPS  Z1, Z2, Z2
	VSUBPS  Z1, Z20, Z3          // 1 − s
	VMULPS  Z3, Z2, Z2
	VMULPS  Z8, Z2, Z2
	VADDPS  Z2, Z1, Z2           // s + term
	VMULPS  (R9), Z5, Z6         // dy·up
	VMULPS  Z2, Z6, Z6
	VMOVUPS Z6, (DI)             // dg
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R9
	DECQ    CX
	JMP     gb16

gbdone:
	VZEROUPPER
	RET
