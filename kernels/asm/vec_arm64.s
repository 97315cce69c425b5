//go:build !purego

#include "textflag.h"
#include "vec_arm64.h"

// NEON vector kernels (the exp family is in vec_exp_arm64.s). Each routine
// handles the first len - len%4 elements (whole 4-float vectors);
// vec_tail.go does the rest. Reductions keep four vector accumulators (16
// partial sums). vec_arm64.h explains the WORD-encoded instructions.

DATA bf16Tab<>+0(SB)/4, $0x00000001 // V29 low bit
DATA bf16Tab<>+4(SB)/4, $0x00007fff // V28 rounding bias
DATA bf16Tab<>+8(SB)/4, $0x7fc00000 // V27 quiet NaN
DATA bf16Tab<>+12(SB)/4, $0xff800000 // -Inf (max's start)
GLOBL bf16Tab<>(SB), RODATA|NOPTR, $16

// func dotNEON(x, y []float32) float32
TEXT ·dotNEON(SB), NOSPLIT, $0-52
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R2
	MOVD y_base+24(FP), R1
	LSR  $2, R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

dot16:
	CMP $4, R2
	BLT dot4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	VFMLA V8.S4, V4.S4, V0.S4
	VFMLA V9.S4, V5.S4, V1.S4
	VFMLA V10.S4, V6.S4, V2.S4
	VFMLA V11.S4, V7.S4, V3.S4
	SUB $4, R2
	B   dot16

dot4:
	CBZ R2, dotdone
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V8.S4]
	VFMLA V8.S4, V4.S4, V0.S4
	SUB $1, R2
	B   dot4

dotdone:
	HSUM4
	FMOVS F0, ret+48(FP)
	RET

// func sumNEON(x []float32) float32
TEXT ·sumNEON(SB), NOSPLIT, $0-28
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R2
	LSR  $2, R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

sum16:
	CMP $4, R2
	BLT sum4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FADD4(4, 0, 0)
	FADD4(5, 1, 1)
	FADD4(6, 2, 2)
	FADD4(7, 3, 3)
	SUB $4, R2
	B   sum16

sum4:
	CBZ R2, sumdone
	VLD1.P 16(R0), [V4.S4]
	FADD4(4, 0, 0)
	SUB $1, R2
	B   sum4

sumdone:
	HSUM4
	FMOVS F0, ret+24(FP)
	RET

// func maxNEON(x []float32) float32
// FMAX returns NaN when either input is NaN, so NaN propagates by itself.
TEXT ·maxNEON(SB), NOSPLIT, $0-28
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R2
	LSR  $2, R2
	MOVD $bf16Tab<>+12(SB), R9
	VLD1R (R9), [V0.S4]
	MOV16(0, 1)
	MOV16(0, 2)
	MOV16(0, 3)

max16:
	CMP $4, R2
	BLT max4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMAX4(4, 0, 0)
	FMAX4(5, 1, 1)
	FMAX4(6, 2, 2)
	FMAX4(7, 3, 3)
	SUB $4, R2
	B   max16

max4:
	CBZ R2, maxdone
	VLD1.P 16(R0), [V4.S4]
	FMAX4(4, 0, 0)
	SUB $1, R2
	B   max4

maxdone:
	FMAX4(1, 0, 0)
	FMAX4(3, 2, 2)
	FMAX4(2, 0, 0)
	FMAXP4(0, 0, 0)
	FMAXP4(0, 0, 0)
	FMOVS F0, ret+24(FP)
	RET

// func axpyNEON(alpha float32, x, y []float32)
TEXT ·axpyNEON(SB), NOSPLIT, $0-56
	FMOVS alpha+0(FP), F31
	VDUP  V31.S[0], V31.S4
	MOVD  x_base+8(FP), R0
	MOVD  x_len+16(FP), R2
	MOVD  y_base+32(FP), R1
	LSR   $2, R2

axpy16:
	CMP $4, R2
	BLT axpy4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1   (R1), [V0.S4, V1.S4, V2.S4, V3.S4]
	VFMLA  V31.S4, V4.S4, V0.S4
	VFMLA  V31.S4, V5.S4, V1.S4
	VFMLA  V31.S4, V6.S4, V2.S4
	VFMLA  V31.S4, V7.S4, V3.S4
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R1)
	SUB $4, R2
	B   axpy16

axpy4:
	CBZ R2, axpydone
	VLD1.P 16(R0), [V4.S4]
	VLD1   (R1), [V0.S4]
	VFMLA  V31.S4, V4.S4, V0.S4
	VST1.P [V0.S4], 16(R1)
	SUB $1, R2
	B   axpy4

axpydone:
	RET

// func scaleToNEON(dst, x []float32, alpha float32)
TEXT ·scaleToNEON(SB), NOSPLIT, $0-52
	MOVD  dst_base+0(FP), R1
	MOVD  x_base+24(FP), R0
	MOVD  x_len+32(FP), R2
	FMOVS alpha+48(FP), F31
	VDUP  V31.S[0], V31.S4
	LSR   $2, R2

scale16:
	CMP $4, R2
	BLT scale4
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMUL4(31, 4, 4)
	FMUL4(31, 5, 5)
	FMUL4(31, 6, 6)
	FMUL4(31, 7, 7)
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUB $4, R2
	B   scale16

scale4:
	CBZ R2, scaledone
	VLD1.P 16(R0), [V4.S4]
	FMUL4(31, 4, 4)
	VST1.P [V4.S4], 16(R1)
	SUB $1, R2
	B   scale4

scaledone:
	RET

// func addNEON(dst, x, y []float32)
TEXT ·addNEON(SB), NOSPLIT, $0-72
	MOVD dst_base+0(FP), R3
	MOVD x_base+24(FP), R0
	MOVD x_len+32(FP), R2
	MOVD y_base+48(FP), R1
	LSR  $2, R2

add16:
	CMP $4, R2
	BLT add4
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	FADD4(4, 0, 0)
	FADD4(5, 1, 1)
	FADD4(6, 2, 2)
	FADD4(7, 3, 3)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R3)
	SUB $4, R2
	B   add16

add4:
	CBZ R2, adddone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V4.S4]
	FADD4(4, 0, 0)
	VST1.P [V0.S4], 16(R3)
	SUB $1, R2
	B   add4

adddone:
	RET

// func mulNEON(dst, x, y []float32)
TEXT ·mulNEON(SB), NOSPLIT, $0-72
	MOVD dst_base+0(FP), R3
	MOVD x_base+24(FP), R0
	MOVD x_len+32(FP), R2
	MOVD y_base+48(FP), R1
	LSR  $2, R2

mul16:
	CMP $4, R2
	BLT mul4
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMUL4(4, 0, 0)
	FMUL4(5, 1, 1)
	FMUL4(6, 2, 2)
	FMUL4(7, 3, 3)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R3)
	SUB $4, R2
	B   mul16

mul4:
	CBZ R2, muldone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V4.S4]
	FMUL4(4, 0, 0)
	VST1.P [V0.S4], 16(R3)
	SUB $1, R2
	B   mul4

muldone:
	RET

// func subShiftNEON(dst, x []float32, a, b float32)
TEXT ·subShiftNEON(SB), NOSPLIT, $0-56
	MOVD  dst_base+0(FP), R1
	MOVD  x_base+24(FP), R0
	MOVD  x_len+32(FP), R2
	FMOVS a+48(FP), F30
	VDUP  V30.S[0], V30.S4
	FMOVS b+52(FP), F31
	VDUP  V31.S[0], V31.S4
	LSR   $2, R2

sub16:
	CMP $4, R2
	BLT sub4
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	FSUB4(30, 0, 0)
	FSUB4(30, 1, 1)
	FSUB4(30, 2, 2)
	FSUB4(30, 3, 3)
	FSUB4(31, 0, 0)
	FSUB4(31, 1, 1)
	FSUB4(31, 2, 2)
	FSUB4(31, 3, 3)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R1)
	SUB $4, R2
	B   sub16

sub4:
	CBZ R2, subdone
	VLD1.P 16(R0), [V0.S4]
	FSUB4(30, 0, 0)
	FSUB4(31, 0, 0)
	VST1.P [V0.S4], 16(R1)
	SUB $1, R2
	B   sub4

subdone:
	RET

// func scaleMulNEON(dst, x, w []float32, s float32)
TEXT ·scaleMulNEON(SB), NOSPLIT, $0-76
	MOVD  dst_base+0(FP), R3
	MOVD  x_base+24(FP), R0
	MOVD  x_len+32(FP), R2
	MOVD  w_base+48(FP), R1
	FMOVS s+72(FP), F31
	VDUP  V31.S[0], V31.S4
	LSR   $2, R2

sm16:
	CMP $4, R2
	BLT sm4
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMUL4(31, 0, 0)
	FMUL4(31, 1, 1)
	FMUL4(31, 2, 2)
	FMUL4(31, 3, 3)
	FMUL4(4, 0, 0)
	FMUL4(5, 1, 1)
	FMUL4(6, 2, 2)
	FMUL4(7, 3, 3)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R3)
	SUB $4, R2
	B   sm16

sm4:
	CBZ R2, smdone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V4.S4]
	FMUL4(31, 0, 0)
	FMUL4(4, 0, 0)
	VST1.P [V0.S4], 16(R3)
	SUB $1, R2
	B   sm4

smdone:
	RET

// func bf16ToF32NEON(dst []float32, src []uint16)
// Interleaving zero halfwords below the bf16 ones (ZIP with a zero
// vector) is the 16-bit left shift into float32 lanes.
TEXT ·bf16ToF32NEON(SB), NOSPLIT, $0-48
	MOVD dst_base+0(FP), R1
	MOVD src_base+24(FP), R0
	MOVD src_len+32(FP), R2
	VEOR V31.B16, V31.B16, V31.B16
	LSR  $2, R2

wid8:
	CMP $2, R2
	BLT wid4
	VLD1.P 16(R0), [V0.H8]
	VZIP1  V0.H8, V31.H8, V1.H8
	VZIP2  V0.H8, V31.H8, V2.H8
	VST1.P [V1.S4, V2.S4], 32(R1)
	SUB $2, R2
	B   wid8

wid4:
	CBZ R2, widdone
	FMOVD (R0), F0
	VZIP1  V0.H8, V31.H8, V1.H8
	VST1.P [V1.S4], 16(R1)

widdone:
	RET

// func f32ToBF16NEON(dst []uint16, src []float32)
// Rounds as BF16RND2 (vec_arm64.h) does; UZP2 keeps the odd halfwords,
// which are the high halves: t>>16 narrowed.
TEXT ·f32ToBF16NEON(SB), NOSPLIT, $0-48
	MOVD dst_base+0(FP), R1
	MOVD src_base+24(FP), R0
	MOVD src_len+32(FP), R2
	MOVD $bf16Tab<>(SB), R9
	VLD1R.P 4(R9), [V29.S4]
	VLD1R.P 4(R9), [V28.S4]
	VLD1R.P 4(R9), [V27.S4]
	LSR  $2, R2

nar8:
	CMP $2, R2
	BLT nar4
	VLD1.P 32(R0), [V0.S4, V1.S4]
	BF16RND2
	VUZP2 V5.H8, V4.H8, V6.H8
	VST1.P [V6.H8], 16(R1)
	SUB $2, R2
	B   nar8

nar4:
	CBZ R2, nardone
	VLD1.P 16(R0), [V0.S4]
	VUSHR $16, V0.S4, V2.S4
	VAND  V29.B16, V2.B16, V2.B16
	ADD4(28, 2, 2)
	ADD4(0, 2, 2)
	FCMEQ4(0, 0, 4)
	VBSL  V27.B16, V2.B16, V4.B16
	VUZP2 V4.H8, V4.H8, V6.H8
	FMOVD F6, (R1)

nardone:
	RET

// func pairRowsBF16NEON(dst *uint32, src *float32, r, kq int)
// The bf16 GEMM's pairing (gemm_bf16dot.go, pairPanel) for r a multiple of
// 4: dst[q*r+x] = bf16(src[2q*r+x]) | bf16(src[(2q+1)*r+x])<<16, rounded
// by BF16RND2; TRN2 on halfwords takes the high half of each
// word of the even row (low half of the pair) and of the odd row (high
// half). dst may be src: a chunk of slot row q is stored after the chunks
// of float32 rows 2q and 2q+1 under it are loaded, and rows before 2q are
// no longer read.
TEXT ·pairRowsBF16NEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R1
	MOVD src+8(FP), R0
	MOVD r+16(FP), R2
	MOVD kq+24(FP), R3
	MOVD $bf16Tab<>(SB), R9
	VLD1R.P 4(R9), [V29.S4]
	VLD1R.P 4(R9), [V28.S4]
	VLD1R.P 4(R9), [V27.S4]
	LSL  $2, R2, R4 // a row's bytes
	LSR  $2, R2, R2 // 4-lane chunks per row

pairq:
	CBZ  R3, pairdone
	MOVD R0, R5
	ADD  R4, R0, R6
	MOVD R2, R7

pairx:
	VLD1.P 16(R5), [V0.S4]
	VLD1.P 16(R6), [V1.S4]
	BF16RND2
	VTRN2 V5.H8, V4.H8, V6.H8
	VST1.P [V6.S4], 16(R1)
	SUBS  $1, R7, R7
	BNE   pairx

	ADD  R4, R0, R0
	ADD  R4, R0, R0
	SUB  $1, R3
	B    pairq

pairdone:
	RET
