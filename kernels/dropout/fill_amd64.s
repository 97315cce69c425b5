//go:build !purego

#include "textflag.h"

// MASK32 leaves the group's mask (keep or 0) in Z8 (elements 0-15) and Z9
// (16-31) and steps the draws' arguments: z = mix(arg), that is
// (z ^ z>>30)·c1, (z ^ z>>27)·c2, z ^ z>>31; then a 16-bit lane at least
// drop (VPCMPUW predicate 5, not less than) keeps its element.
#define MASK32 \
	VPSRLQ $30, Z0, Z6; \
	VPXORQ Z0, Z6, Z6; \
	VPMULLQ Z2, Z6, Z6; \
	VPSRLQ $27, Z6, Z7; \
	VPXORQ Z6, Z7, Z7; \
	VPMULLQ Z3, Z7, Z7; \
	VPSRLQ $31, Z7, Z6; \
	VPXORQ Z7, Z6, Z6; \
	VPADDQ Z1, Z0, Z0; \
	VPCMPUW $5, Z4, Z6, K1; \
	KSHIFTRD $16, K1, K2; \
	VMOVUPS.Z Z5, K1, Z8; \
	VMOVUPS.Z Z5, K2, Z9

// func fillAVX512(dst, x *float32, groups int, state *[8]uint64, step uint64, drop uint32, keep float32)
// Z0: the eight draws' SplitMix64 arguments, Z1: their step (8·γ), Z2 and
// Z3: the output function's multipliers, Z4: drop in every 16-bit lane,
// Z5: keep in every float32 lane. A draw's 64 bits are four 16-bit lanes,
// low first, and the eight draws in order are the 32 lanes of the group's
// 32 elements, so one unsigned 16-bit compare gives the group's mask.
TEXT ·fillAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ groups+16(FP), CX
	MOVQ state+24(FP), R8
	VMOVDQU64 (R8), Z0
	VPBROADCASTQ step+32(FP), Z1
	MOVQ $0xBF58476D1CE4E5B9, AX
	VPBROADCASTQ AX, Z2
	MOVQ $0x94D049BB133111EB, AX
	VPBROADCASTQ AX, Z3
	MOVL drop+40(FP), AX
	VPBROADCASTW AX, Z4
	VBROADCASTSS keep+44(FP), Z5
	TESTQ SI, SI
	JZ mask

apply:
	MASK32
	VMULPS (SI), Z8, Z8    // x·mask, as fillScalar multiplies
	VMULPS 64(SI), Z9, Z9
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ CX
	JNZ apply
	VZEROUPPER
	RET

mask:
	MASK32
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, 64(DI)
	ADDQ $128, DI
	DECQ CX
	JNZ mask
	VZEROUPPER
	RET
