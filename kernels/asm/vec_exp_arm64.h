// The NEON exp machinery shared by vec_exp_arm64.s and vec_tanh_arm64.s
// (each gets its own file-local copy of the table). Needs vec_arm64.h.

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
