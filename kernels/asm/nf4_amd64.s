//go:build !purego

#include "textflag.h"

// Interleave indices for VPERMT2PS: output 2i takes hi-nibble value i
// (first table), output 2i+1 the lo-nibble value i (second table, +16).
DATA nf4ilv0<>+0(SB)/4, $0
DATA nf4ilv0<>+4(SB)/4, $16
DATA nf4ilv0<>+8(SB)/4, $1
DATA nf4ilv0<>+12(SB)/4, $17
DATA nf4ilv0<>+16(SB)/4, $2
DATA nf4ilv0<>+20(SB)/4, $18
DATA nf4ilv0<>+24(SB)/4, $3
DATA nf4ilv0<>+28(SB)/4, $19
DATA nf4ilv0<>+32(SB)/4, $4
DATA nf4ilv0<>+36(SB)/4, $20
DATA nf4ilv0<>+40(SB)/4, $5
DATA nf4ilv0<>+44(SB)/4, $21
DATA nf4ilv0<>+48(SB)/4, $6
DATA nf4ilv0<>+52(SB)/4, $22
DATA nf4ilv0<>+56(SB)/4, $7
DATA nf4ilv0<>+60(SB)/4, $23
GLOBL nf4ilv0<>(SB), RODATA|NOPTR, $64

DATA nf4ilv1<>+0(SB)/4, $8
DATA nf4ilv1<>+4(SB)/4, $24
DATA nf4ilv1<>+8(SB)/4, $9
DATA nf4ilv1<>+12(SB)/4, $25
DATA nf4ilv1<>+16(SB)/4, $10
DATA nf4ilv1<>+20(SB)/4, $26
DATA nf4ilv1<>+24(SB)/4, $11
DATA nf4ilv1<>+28(SB)/4, $27
DATA nf4ilv1<>+32(SB)/4, $12
DATA nf4ilv1<>+36(SB)/4, $28
DATA nf4ilv1<>+40(SB)/4, $13
DATA nf4ilv1<>+44(SB)/4, $29
DATA nf4ilv1<>+48(SB)/4, $14
DATA nf4ilv1<>+52(SB)/4, $30
DATA nf4ilv1<>+56(SB)/4, $15
DATA nf4ilv1<>+60(SB)/4, $31
GLOBL nf4ilv1<>(SB), RODATA|NOPTR, $64

DATA nf4low<>+0(SB)/4, $15
GLOBL nf4low<>(SB), RODATA|NOPTR, $4

// func dequantNF4BlocksAVX512(dst *float32, packed *byte, absmax *float32, blocks, blockBytes int, code *[16]float32)
// blocks whole blocks of blockBytes packed bytes (a multiple of 16, at
// least 16) each, block b scaled by absmax[b], the constants loaded once
// (a GEMM packing an NF4 panel dequantizes rows of 64-value blocks, where
// a call per block cost as much as the block). Per 16 bytes: widen to 16
// dwords, split the nibbles, look both up in the 16-entry code book held
// in one register (VPERMPS), interleave high/low (VPERMT2PS) and scale.
TEXT ·dequantNF4BlocksAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ packed+8(FP), SI
	MOVQ absmax+16(FP), R8
	MOVQ blocks+24(FP), R9
	MOVQ blockBytes+32(FP), R10
	MOVQ code+40(FP), AX
	VMOVUPS (AX), Z6
	VMOVDQU32 nf4ilv0<>(SB), Z4
	VMOVDQU32 nf4ilv1<>(SB), Z5
	VPBROADCASTD nf4low<>(SB), Z3
	TESTQ R9, R9
	JEQ  bdone

block:
	VBROADCASTSS (R8), Z7
	MOVQ R10, CX

inner:
	VPMOVZXBD (SI), Z0
	VPSRLD    $4, Z0, Z1
	VPANDD    Z3, Z0, Z2
	VPERMPS   Z6, Z1, Z1
	VPERMPS   Z6, Z2, Z2
	VMOVAPS   Z1, Z8
	VPERMT2PS Z2, Z4, Z8
	VPERMT2PS Z2, Z5, Z1
	VMULPS    Z7, Z8, Z8
	VMULPS    Z7, Z1, Z1
	VMOVUPS   Z8, (DI)
	VMOVUPS   Z1, 64(DI)
	ADDQ      $16, SI
	ADDQ      $128, DI
	SUBQ      $16, CX
	JNE       inner
	ADDQ      $4, R8
	DECQ      R9
	JNE       block

bdone:
	VZEROUPPER
	RET
