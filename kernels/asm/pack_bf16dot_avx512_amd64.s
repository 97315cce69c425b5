//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// The pairing step of the bf16 GEMM (gemm_bf16dot.go, pairPanel) in
// AVX-512: float32 rounded to bf16 to nearest even as f32ToBF16AVX512
// does (NaN lanes become the quiet NaN 0x7fc0 under a compare mask), two
// rows at a time, each pair of values joined into one 32-bit slot.

C4(pairLowBit, 0x00000001)
C4(pairR7fff, 0x00007fff)
C4(pairQNaN, 0x00007fc0)

// RNE16(X, T, K) leaves in X's lanes the bf16 of X's float32 lanes, in
// the low 16 bits. Z13-Z15 hold the constants.
#define RNE16(X, T, K) \
	VPSRLD $16, X, T; \
	VPANDD Z13, T, T; \
	VPADDD Z14, T, T; \
	VPADDD X, T, T; \
	VCMPPS $3, X, X, K; \
	VPSRLD $16, T, X; \
	VMOVDQA32 Z15, K, X

// func pairRowsBF16AVX512(dst *uint32, src *float32, r, kq int)
// for q < kq, x < r: dst[q*r+x] = bf16(src[2q*r+x]) | bf16(src[(2q+1)*r+x])<<16.
// dst may be src itself: row q is written after rows 2q and 2q+1 are read
// (for q = 0, each 16-lane chunk after its own loads).
TEXT ·pairRowsBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ r+16(FP), R8
	MOVQ kq+24(FP), DX
	VPBROADCASTD pairLowBit<>(SB), Z13
	VPBROADCASTD pairR7fff<>(SB), Z14
	VPBROADCASTD pairQNaN<>(SB), Z15
	// K2: the r%16 lanes of the last, partial chunk.
	MOVQ R8, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	MOVQ R8, R9
	SHLQ $2, R9 // row stride in bytes
	MOVQ R8, BX
	SHRQ $4, BX // whole 16-lane chunks per row
	TESTQ DX, DX
	JEQ done

rows:
	MOVQ SI, R10
	LEAQ (SI)(R9*1), R11
	MOVQ DI, R12
	MOVQ BX, CX
	TESTQ CX, CX
	JEQ part

chunk:
	VMOVUPS (R10), Z0
	VMOVUPS (R11), Z2
	RNE16(Z0, Z1, K1)
	RNE16(Z2, Z3, K3)
	VPSLLD $16, Z2, Z2
	VPORD Z0, Z2, Z2
	VMOVDQU32 Z2, (R12)
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R12
	DECQ CX
	JNE chunk

part:
	KORTESTW K2, K2
	JEQ next
	VMOVUPS (R10), K2, Z0
	VMOVUPS (R11), K2, Z2
	RNE16(Z0, Z1, K1)
	RNE16(Z2, Z3, K3)
	VPSLLD $16, Z2, Z2
	VPORD Z0, Z2, Z2
	VMOVDQU32 Z2, K2, (R12)

next:
	LEAQ (SI)(R9*2), SI
	ADDQ R9, DI
	DECQ DX
	JNE rows

done:
	VZEROUPPER
	RET

// Word indices for VPERMI2W interleaving row 2q (table 1, 0-31) and row
// 2q+1 (table 2, 32-63) of 32 bf16 columns into 32 pairs: the low 16 pairs
// take columns 0-15, the high 16 columns 16-31.
DATA pairIlvLo<>+0(SB)/8, $0x0021000100200000
DATA pairIlvLo<>+8(SB)/8, $0x0023000300220002
DATA pairIlvLo<>+16(SB)/8, $0x0025000500240004
DATA pairIlvLo<>+24(SB)/8, $0x0027000700260006
DATA pairIlvLo<>+32(SB)/8, $0x0029000900280008
DATA pairIlvLo<>+40(SB)/8, $0x002b000b002a000a
DATA pairIlvLo<>+48(SB)/8, $0x002d000d002c000c
DATA pairIlvLo<>+56(SB)/8, $0x002f000f002e000e
GLOBL pairIlvLo<>(SB), RODATA|NOPTR, $64
DATA pairIlvHi<>+0(SB)/8, $0x0031001100300010
DATA pairIlvHi<>+8(SB)/8, $0x0033001300320012
DATA pairIlvHi<>+16(SB)/8, $0x0035001500340014
DATA pairIlvHi<>+24(SB)/8, $0x0037001700360016
DATA pairIlvHi<>+32(SB)/8, $0x0039001900380018
DATA pairIlvHi<>+40(SB)/8, $0x003b001b003a001a
DATA pairIlvHi<>+48(SB)/8, $0x003d001d003c001c
DATA pairIlvHi<>+56(SB)/8, $0x003f001f003e001e
GLOBL pairIlvHi<>(SB), RODATA|NOPTR, $64

// func pairColsBF16AVX512(dst *uint32, src *uint16, ldb, kq int)
// One 32-column panel of a stored k×n bf16 B (rows ldb apart) as pairs:
// for q < kq, x < 32: dst[q*32+x] = src[2q*ldb+x] | src[(2q+1)*ldb+x]<<16.
// The values are bf16 already: bits move, nothing rounds.
TEXT ·pairColsBF16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), R8
	MOVQ kq+24(FP), CX
	SHLQ $1, R8 // row stride in bytes
	VMOVDQU64 pairIlvLo<>(SB), Z6
	VMOVDQU64 pairIlvHi<>(SB), Z7
	TESTQ CX, CX
	JEQ  cdone

cols:
	VMOVDQU16 (SI), Z0
	VMOVDQU16 (SI)(R8*1), Z1
	VMOVDQA64 Z6, Z2
	VMOVDQA64 Z7, Z3
	VPERMI2W  Z1, Z0, Z2
	VPERMI2W  Z1, Z0, Z3
	VMOVDQU32 Z2, (DI)
	VMOVDQU32 Z3, 64(DI)
	LEAQ      (SI)(R8*2), SI
	ADDQ      $128, DI
	DECQ      CX
	JNE       cols

cdone:
	VZEROUPPER
	RET
