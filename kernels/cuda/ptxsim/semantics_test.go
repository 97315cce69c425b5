package ptxsim

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func f32b(f float32) uint64 { return uint64(math.Float32bits(f)) }
func f64b(f float64) uint64 { return math.Float64bits(f) }

// exactFma rounds a*b+c once to float32 in mode, with math/big.
func exactFma(a, b, c float32, mode int) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	m := map[int]big.RoundingMode{rn: big.ToNearestEven, rz: big.ToZero, rm: big.ToNegativeInf, rp: big.ToPositiveInf}[mode]
	z := new(big.Float).SetPrec(24).SetMode(m)
	z.Set(x)
	f, _ := z.Float32()
	return f
}

// TestFmaF32Rounding: fma in all four rounding modes, rounded once, against
// math/big; inputs spread over exponents so that c often falls far below
// a*b (the remainder decides directed roundings and ties).
func TestFmaF32Rounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := func() float32 {
		return float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(60)-30))
	}
	for i := 0; i < 20000; i++ {
		a, b, c := r(), r(), r()
		if i%3 == 0 {
			c = float32(-float64(a) * float64(b)) // near-cancellation
		}
		if got, want := fmaRN(a, b, c), exactFma(a, b, c, rn); math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) {
			t.Fatalf("fmaRN(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
		for mode := rn; mode <= rp; mode++ {
			got, want := fmaF32(a, b, c, mode), exactFma(a, b, c, mode)
			if math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) {
				t.Fatalf("fma(%g, %g, %g) mode %d = %g, want %g", a, b, c, mode, got, want)
			}
		}
	}
}

// TestRoundF32Ties: a float64 that is exactly an f32 midpoint, with a
// remainder below it, must round by the remainder, not to even.
func TestRoundF32Ties(t *testing.T) {
	mid := 1 + math.Ldexp(1, -24) // between 1 and 1+2^-23
	up := float32(1 + math.Ldexp(1, -23))
	cases := []struct {
		s, e float64
		mode int
		want float32
	}{
		{mid, 0, rn, 1},
		{mid, math.Ldexp(1, -80), rn, up},
		{mid, -math.Ldexp(1, -80), rn, 1},
		{1, math.Ldexp(1, -80), rm, 1},
		{1, -math.Ldexp(1, -80), rm, math.Nextafter32(1, 0)},
		{1, math.Ldexp(1, -80), rp, up},
		{-1, math.Ldexp(1, -80), rz, math.Nextafter32(-1, 0)},
		{-1, -math.Ldexp(1, -80), rz, -1},
	}
	for _, c := range cases {
		if got := roundF32(c.s, c.e, c.mode); got != c.want {
			t.Errorf("roundF32(%v, %v, mode %d) = %v, want %v", c.s, c.e, c.mode, got, c.want)
		}
	}
}

// sel turns predicate %p1 into %out.
const sel = "\n\tselp.u64 %out, 1, 0, %p1;"

func TestFmaDirected(t *testing.T) {
	// 1 + 2^-23 squared = 1 + 2^-22 + 2^-46: the tail decides rm/rp/rz.
	a := float32(1 + math.Ldexp(1, -23))
	c := float32(-0.5)
	for _, m := range []struct {
		op   string
		mode int
	}{{"rn", rn}, {"rz", rz}, {"rm", rm}, {"rp", rp}} {
		want := exactFma(a, a, c, m.mode)
		runOp(t, "fma."+m.op, "fma."+m.op+".f32 %f1, %fa, %fb, %fc;\n\tmov.b32 %r2, %f1;\n\tcvt.u64.u32 %out, %r2;",
			[]opCase{{f32b(a), f32b(a), f32b(c), f32b(want)}, {f32b(-a), f32b(a), f32b(-c), f32b(exactFma(-a, a, -c, m.mode))}})
	}
	if exactFma(a, a, c, rm) == exactFma(a, a, c, rp) {
		t.Fatal("test inputs do not separate the rounding modes")
	}
}

func TestCvt(t *testing.T) {
	nan := uint64(0x7FC00000)
	out16 := "\n\tcvt.u64.u16 %out, %rs1;"
	runOp(t, "cvt.rn.bf16.f32", "cvt.rn.bf16.f32 %rs1, %fa;"+out16, []opCase{
		{f32b(1), 0, 0, 0x3F80},
		{0x3F808000, 0, 0, 0x3F80}, // tie, even below
		{0x3F818000, 0, 0, 0x3F82}, // tie, even above
		{0x3F808001, 0, 0, 0x3F81},
		{0xBF80C000, 0, 0, 0xBF81},
		{nan, 0, 0, 0x7FFF},
		{0x7F7FFFFF, 0, 0, 0x7F80}, // rounds to infinity
	})
	runOp(t, "cvt.rn.bf16x2.f32", "cvt.rn.bf16x2.f32 %r2, %fa, %fb;\n\tcvt.u64.u32 %out, %r2;", []opCase{
		{f32b(1), f32b(-2), 0, 0x3F80C000},
	})
	runOp(t, "cvt.f32.bf16", "cvt.f32.bf16 %f1, %ha;\n\tmov.b32 %r2, %f1;\n\tcvt.u64.u32 %out, %r2;", []opCase{
		{0xC040, 0, 0, f32b(-3)},
	})
	runOp(t, "cvt.rn.f16.f32", "cvt.rn.f16.f32 %rs1, %fa;"+out16, []opCase{
		{f32b(1), 0, 0, 0x3C00}, {f32b(65520), 0, 0, 0x7C00}, {f32b(-0.5), 0, 0, 0xB800},
		{f32b(float32(math.Ldexp(1, -24))), 0, 0, 1}, {f32b(1 + 1.0/2048), 0, 0, 0x3C00}, {f32b(1 + 3.0/2048), 0, 0, 0x3C02},
	})
	runOp(t, "cvt.f32.f16", "cvt.f32.f16 %f1, %ha;\n\tmov.b32 %r2, %f1;\n\tcvt.u64.u32 %out, %r2;", []opCase{
		{0x3C00, 0, 0, f32b(1)}, {0x0001, 0, 0, f32b(float32(math.Ldexp(1, -24)))}, {0xFC00, 0, 0, f32b(float32(math.Inf(-1)))},
	})
	outF := "\n\tmov.b32 %r2, %f1;\n\tcvt.u64.u32 %out, %r2;"
	runOp(t, "cvt.sat.f32.f32", "cvt.sat.f32.f32 %f1, %fa;"+outF, []opCase{
		{f32b(1.5), 0, 0, f32b(1)}, {f32b(-2), 0, 0, 0}, {nan, 0, 0, 0}, {f32b(0.25), 0, 0, f32b(0.25)},
	})
	runOp(t, "cvt.rni.f32.f32", "cvt.rni.f32.f32 %f1, %fa;"+outF, []opCase{
		{f32b(2.5), 0, 0, f32b(2)}, {f32b(3.5), 0, 0, f32b(4)}, {f32b(-2.5), 0, 0, f32b(-2)},
	})
	runOp(t, "cvt.rzi.s32.f64", "cvt.rzi.s32.f64 %r2, %da;\n\tcvt.s64.s32 %out, %r2;", []opCase{
		{f64b(-2.7), 0, 0, uint64(0xFFFFFFFFFFFFFFFE)}, {f64b(1e20), 0, 0, 0x7FFFFFFF}, {f64b(-1e20), 0, 0, 0xFFFFFFFF80000000}, {f64b(math.NaN()), 0, 0, 0},
	})
	runOp(t, "cvt.rmi.u32.f32", "cvt.rmi.u32.f32 %r2, %fa;\n\tcvt.u64.u32 %out, %r2;", []opCase{
		{f32b(2.7), 0, 0, 2}, {f32b(-3), 0, 0, 0}, {f32b(5e9), 0, 0, 0xFFFFFFFF},
	})
	x := 1 + math.Ldexp(1, -30)
	runOp(t, "cvt.rm.f32.f64", "cvt.rm.f32.f64 %f1, %da;"+outF, []opCase{{f64b(x), 0, 0, f32b(1)}, {f64b(-x), 0, 0, f32b(-(1 + 0x1p-23))}})
	runOp(t, "cvt.rp.f32.f64", "cvt.rp.f32.f64 %f1, %da;"+outF, []opCase{{f64b(x), 0, 0, f32b(1 + 0x1p-23)}})
	runOp(t, "cvt.rz.f32.f64", "cvt.rz.f32.f64 %f1, %da;"+outF, []opCase{{f64b(-x), 0, 0, f32b(-1)}})
	runOp(t, "cvt.rn.f32.s32", "cvt.rn.f32.s32 %f1, %a;"+outF, []opCase{{0xFFFFFFFD, 0, 0, f32b(-3)}, {16777217, 0, 0, f32b(16777216)}})
	runOp(t, "cvt.s64.s32", "cvt.s64.s32 %out, %a;", []opCase{{0xFFFFFFFF, 0, 0, ^uint64(0)}})
	runOp(t, "cvt.u64.u32", "cvt.u64.u32 %out, %a;", []opCase{{0x1FFFFFFFF, 0, 0, 0xFFFFFFFF}})
	runOp(t, "cvt.sat.s8.s32", "cvt.sat.s8.s32 %r2, %a;\n\tcvt.u64.u32 %out, %r2;", []opCase{{300, 0, 0, 127}, {0xFFFFFF00, 0, 0, 0xFFFFFF80}})
}

func TestSetp(t *testing.T) {
	nan := uint64(0x7FC00000)
	one, two := f32b(1), f32b(2)
	cmp := func(c string, cases []opCase) {
		runOp(t, "setp."+c+".f32", "setp."+c+".f32 %p1, %fa, %fb;"+sel, cases)
	}
	cmp("lt", []opCase{{one, two, 0, 1}, {nan, two, 0, 0}, {two, one, 0, 0}})
	cmp("ltu", []opCase{{one, two, 0, 1}, {nan, two, 0, 1}, {two, one, 0, 0}})
	cmp("geu", []opCase{{one, two, 0, 0}, {one, nan, 0, 1}, {two, two, 0, 1}})
	cmp("ne", []opCase{{one, two, 0, 1}, {nan, nan, 0, 0}})
	cmp("neu", []opCase{{one, one, 0, 0}, {nan, nan, 0, 1}})
	cmp("equ", []opCase{{one, one, 0, 1}, {nan, one, 0, 1}, {one, two, 0, 0}})
	cmp("nan", []opCase{{one, nan, 0, 1}, {one, two, 0, 0}})
	cmp("num", []opCase{{one, nan, 0, 0}, {one, two, 0, 1}})
	runOp(t, "setp.lt.f64", "setp.lt.f64 %p1, %da, %db;"+sel, []opCase{{f64b(-1), f64b(math.NaN()), 0, 0}, {f64b(-1), f64b(0), 0, 1}})
	runOp(t, "setp signed/unsigned", "setp.lt.s32 %p1, %a, %b;\n\tsetp.lo.u32 %p2, %a, %b;\n\tselp.u64 %rd7, 2, 0, %p2;\n\tselp.u64 %out, 1, 0, %p1;\n\tor.b64 %out, %out, %rd7;",
		[]opCase{{0xFFFFFFFF, 1, 0, 1}, {1, 0xFFFFFFFF, 0, 2}})
	// .and with a negated c, and the complement q.
	runOp(t, "setp.lt.and p|q", "setp.ne.s32 %p3, %c, 0;\n\tsetp.lt.and.s32 %p1|%p2, %a, %b, !%p3;\n\tselp.u64 %rd7, 2, 0, %p2;\n\tselp.u64 %out, 1, 0, %p1;\n\tor.b64 %out, %out, %rd7;",
		[]opCase{{1, 2, 0, 1}, {2, 1, 0, 2}, {1, 2, 1, 0}, {2, 1, 1, 0}})
	runOp(t, "setp.gt.or", "setp.ne.s32 %p3, %c, 0;\n\tsetp.gt.or.s64 %p1, %x, %y, %p3;"+sel,
		[]opCase{{1, 2, 0, 0}, {1, 2, 1, 1}, {3, 2, 0, 1}})
}

func TestIntegerOps(t *testing.T) {
	out32 := "\n\tcvt.u64.u32 %out, %r2;"
	m := func(v int32) uint64 { return uint64(uint32(v)) }
	runOp(t, "div.s32", "div.s32 %r2, %a, %b;"+out32, []opCase{{m(-7), 2, 0, m(-3)}, {7, m(-2), 0, m(-3)}, {m(math.MinInt32), m(-1), 0, m(math.MinInt32)}})
	runOp(t, "rem.s32", "rem.s32 %r2, %a, %b;"+out32, []opCase{{m(-7), 2, 0, m(-1)}, {7, m(-2), 0, 1}})
	runOp(t, "div.u32", "div.u32 %r2, %a, %b;"+out32, []opCase{{m(-7), 2, 0, 0x7FFFFFFC}})
	runOp(t, "rem.u32", "rem.u32 %r2, %a, %b;"+out32, []opCase{{m(-7), 2, 0, 1}})
	runOp(t, "div.s64", "div.s64 %out, %x, %y;", []opCase{{uint64(0xFFFFFFFFFFFFFFF9), 2, 0, uint64(0xFFFFFFFFFFFFFFFD)}})
	runOp(t, "shr.s32", "shr.s32 %r2, %a, %b;"+out32, []opCase{{m(-8), 1, 0, m(-4)}, {m(-8), 40, 0, m(-1)}, {8, 40, 0, 0}})
	runOp(t, "shl.b32", "shl.b32 %r2, %a, %b;"+out32, []opCase{{1, 31, 0, 0x80000000}, {1, 33, 0, 0}})
	runOp(t, "shr.u64", "shr.u64 %out, %x, %b;", []opCase{{1 << 63, 63, 0, 1}, {1 << 63, 64, 0, 0}})
	runOp(t, "mul.hi.s32", "mul.hi.s32 %r2, %a, %b;"+out32, []opCase{{m(-2), 0x40000000, 0, m(-1)}})
	runOp(t, "mul.hi.u64", "mul.hi.u64 %out, %x, %y;", []opCase{{1 << 63, 4, 0, 2}})
	runOp(t, "mul.wide.s32", "mul.wide.s32 %out, %a, %b;", []opCase{{m(-3), 0x7FFFFFFF, 0, 0xFFFFFFFE80000003}})
	runOp(t, "mul.wide.u32", "mul.wide.u32 %out, %a, %b;", []opCase{{0xFFFFFFFF, 2, 0, 0x1FFFFFFFE}})
	runOp(t, "mad.lo.s32", "mad.lo.s32 %r2, %a, %b, %c;"+out32, []opCase{{3, m(-4), 5, m(-7)}})
	runOp(t, "min.s32/max.u32", "min.s32 %r2, %a, %b;\n\tmax.u32 %r3, %a, %b;\n\tmov.b64 %out, {%r2, %r3};", []opCase{{m(-1), 1, 0, 0xFFFFFFFF_FFFFFFFF}})
	runOp(t, "neg/abs", "neg.s32 %r2, %a;\n\tabs.s32 %r3, %a;\n\tmov.b64 %out, {%r2, %r3};", []opCase{{m(-5), 0, 0, 5 | 5<<32}})
	// prmt: selectors pick bytes of {b, a}; bit 3 of a selector replicates the sign.
	runOp(t, "prmt.b32", "prmt.b32 %r2, %a, %b, %c;"+out32, []opCase{
		{0x33221100, 0x77665544, 0x5410, 0x55441100},
		{0x33221100, 0x77665544, 0x7654, 0x77665544},
		{0x000000F0, 0, 0x0008, 0xF0F0F0FF}, // selector 8: byte 0 with its sign; 0: byte 0
		{0x00000070, 0, 0x0008, 0x70707000},
	})
	runOp(t, "bfi.b32", "bfi.b32 %r2, %a, %b, 8, 4;"+out32, []opCase{{0xFFFFFFF5, 0xAAAAAAAA, 0, 0xAAAAA5AA}})
	runOp(t, "bfi.b32 reg", "bfi.b32 %r2, %a, %b, %c, 27;"+out32, []opCase{{0xFFFFFFFF, 0, 5, 0xFFFFFFE0}})
	runOp(t, "bfe.s32", "bfe.s32 %r2, %a, 4, 8;"+out32, []opCase{{0x00000F80, 0, 0, 0xFFFFFFF8}})
	runOp(t, "bfe.u32", "bfe.u32 %r2, %a, 4, 8;"+out32, []opCase{{0x00000F80, 0, 0, 0xF8}})
	runOp(t, "popc/clz", "popc.b32 %r2, %a;\n\tclz.b32 %r3, %a;\n\tmov.b64 %out, {%r2, %r3};", []opCase{{0x00F0, 0, 0, 4 | 24<<32}})
	runOp(t, "mov pack/unpack", "mov.b32 {%rs1, %rs2}, %a;\n\tmov.b32 %r2, {%rs2, %rs1};"+out32, []opCase{{0x12345678, 0, 0, 0x56781234}})
	runOp(t, "and/or/xor/not", "and.b32 %r2, %a, %b;\n\tor.b32 %r3, %a, %b;\n\txor.b32 %r4, %r2, %r3;\n\tnot.b32 %r2, %r4;"+out32, []opCase{{0xF0F0, 0xFF00, 0, 0xFFFFF00F}})
	runOp(t, "immediates", "add.s32 %r2, %a, -1;\n\tcvt.s64.s32 %out, %r2;", []opCase{{0, 0, 0, ^uint64(0)}})
}

func TestFloatOps(t *testing.T) {
	nan := uint64(0x7FC00000)
	outF := "\n\tmov.b32 %r2, %f1;\n\tcvt.u64.u32 %out, %r2;"
	runOp(t, "min.f32 NaN", "min.f32 %f1, %fa, %fb;"+outF, []opCase{{nan, f32b(2), 0, f32b(2)}, {f32b(-1), f32b(2), 0, f32b(-1)}})
	runOp(t, "max.f32 NaN", "max.f32 %f1, %fa, %fb;"+outF, []opCase{{f32b(2), nan, 0, f32b(2)}})
	runOp(t, "ex2.approx.ftz.f32", "ex2.approx.ftz.f32 %f1, %fa;"+outF, []opCase{{f32b(3), 0, 0, f32b(8)}, {f32b(-200), 0, 0, 0}})
	runOp(t, "rcp.rn.f32", "rcp.rn.f32 %f1, %fa;"+outF, []opCase{{f32b(4), 0, 0, f32b(0.25)}})
	runOp(t, "div.rn.f32", "div.rn.f32 %f1, %fa, %fb;"+outF, []opCase{{f32b(1), f32b(3), 0, f32b(float32(1.0 / 3))}})
	runOp(t, "sqrt.rn.f32", "sqrt.rn.f32 %f1, %fa;"+outF, []opCase{{f32b(2), 0, 0, f32b(float32(math.Sqrt2))}})
	runOp(t, "neg/abs.f32", "neg.f32 %f1, %fa;\n\tabs.f32 %f1, %f1;"+outF, []opCase{{f32b(3), 0, 0, f32b(3)}})
	runOp(t, "add.sat.f32", "add.sat.f32 %f1, %fa, %fb;"+outF, []opCase{{f32b(0.75), f32b(0.5), 0, f32b(1)}})
	runOp(t, "mul.ftz.f32", "mul.ftz.f32 %f1, %fa, %fb;"+outF, []opCase{{f32b(0x1p-100), f32b(0x1p-30), 0, 0}})
	runOp(t, "fma.rn.f64", "fma.rn.f64 %fd1, %da, %db, %dc;\n\tmov.b64 %out, %fd1;", []opCase{{f64b(1 + 0x1p-52), f64b(1 - 0x1p-52), f64b(-1), f64b(-0x1p-104)}})
	runOp(t, "hex immediates", "add.f32 %f1, %fa, 0f3F800000;\n\tadd.f64 %fd1, %da, 0d3FF0000000000000;"+outF, []opCase{{f32b(1), 0, 0, f32b(2)}})
}

func TestBitOps(t *testing.T) {
	out32 := "\n\tcvt.u64.u32 %out, %r2;"
	// 0x96 is a^b^c; 0xE8 the majority; 0xCA a ? b : c (bitwise).
	runOp(t, "lop3 xor3", "lop3.b32 %r2, %a, %b, %c, 0x96;"+out32, []opCase{{0xF0F0, 0xFF00, 0x0FF0, 0xF0F0 ^ 0xFF00 ^ 0x0FF0}})
	runOp(t, "lop3 select", "lop3.b32 %r2, %a, %b, %c, 0xCA;"+out32, []opCase{{0xFF00FF00, 0x12345678, 0x9ABCDEF0, 0x12BC56F0}})
	runOp(t, "shf.l.wrap", "shf.l.wrap.b32 %r2, %a, %b, %c;"+out32, []opCase{{0x80000000, 0x00000001, 1, 0x00000003}, {0x80000000, 1, 33, 3}})
	runOp(t, "shf.r.clamp", "shf.r.clamp.b32 %r2, %a, %b, %c;"+out32, []opCase{{0x00000010, 0x00000001, 4, 0x10000001}, {0, 7, 40, 7}})
	runOp(t, "max.NaN.f32", "max.NaN.f32 %f1, %fa, %fb;\n\tmov.b32 %r2, %f1;"+out32, []opCase{{0x7FC00000, f32b(1), 0, 0x7FC00000}, {f32b(1), f32b(2), 0, f32b(2)}})
	runOp(t, "activemask", "activemask.b32 %r2;"+out32, []opCase{{0, 0, 0, 7}, {0, 0, 0, 7}, {0, 0, 0, 7}})
}

func TestQualifiedSpacesAndUnknownModifiers(t *testing.T) {
	// .shared::cta is .shared; bar.warp.sync waits for the warp.
	src := `.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	.shared .align 4 .b8 s[128];
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, s;
	shl.b32 %r3, %r1, 2;
	add.s32 %r2, %r2, %r3;
	st.shared::cta.u32 [%r2], %r1;
	bar.warp.sync -1;
	ld.shared::cta.u32 %r3, [%r2];
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.global.L1::no_allocate.u32 [%rd3], %r3;
	ret;
}
`
	buf, err := launch1(t, src, 32, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if buf[4*31] != 31 {
		t.Errorf("thread 31 stored %d, want 31", buf[4*31])
	}
	_, err = Load("bad.ptx", ptxHeader+".visible .entry k()\n{\n\t.reg .f32 %f<2>;\n\tadd.relu.f32 %f1, %f1, %f1;\n}\n")
	if err == nil {
		var m *Module
		m, _ = Load("bad.ptx", ptxHeader+".visible .entry k()\n{\n\t.reg .f32 %f<2>;\n\tadd.relu.f32 %f1, %f1, %f1;\n}\n")
		_, err = m.Kernel("k")
	}
	if err == nil || !strings.Contains(err.Error(), "modifier .relu") {
		t.Errorf("add.relu.f32: got %v, want the unknown modifier refused", err)
	}
}
