// Helpers shared by the amd64 vector kernels (vec_*amd64.s).

// V8 defines a 32-byte constant holding v in all 8 float32 lanes (AVX2
// has no embedded broadcast, so constants used as memory operands are
// full vectors).
#define V8(name, v) \
	DATA name<>+0(SB)/4, $v; DATA name<>+4(SB)/4, $v; \
	DATA name<>+8(SB)/4, $v; DATA name<>+12(SB)/4, $v; \
	DATA name<>+16(SB)/4, $v; DATA name<>+20(SB)/4, $v; \
	DATA name<>+24(SB)/4, $v; DATA name<>+28(SB)/4, $v; \
	GLOBL name<>(SB), RODATA|NOPTR, $32

// C4 defines a 4-byte constant for VBROADCASTSS.
#define C4(name, v) DATA name<>+0(SB)/4, $v; GLOBL name<>(SB), RODATA|NOPTR, $4

// HSUM8 leaves the sum of Y's 8 lanes in lane 0 of X (Y's low half).
#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS T, X, X; \
	VHADDPS X, X, X; \
	VHADDPS X, X, X

// HSUM16 leaves the sum of Z0's 16 lanes in lane 0 of X0 (clobbers Y1).
#define HSUM16 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS Y1, Y0, Y0; \
	HSUM8(Y0, X0, X1)
