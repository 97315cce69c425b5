package ptxsim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFastPathsMatchGeneric: the specialised handlers give what the
// general code gives: unsigned integer cvt (a mask), cvt.sat.f32.f32, and
// fmaRN's exact-zero shortcut.
func TestFastPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ints := []uint64{0, 1, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32, ^uint64(0), 0x8000, 0x80000000}
	for i := 0; i < 1000; i++ {
		ints = append(ints, rng.Uint64())
	}
	types := []string{"u8", "u16", "u32", "u64", "b8", "b16", "b32", "b64"}
	for _, st := range types {
		for _, dt := range types {
			f, err := cvtFunc(dt, st, rn, -1, false, false)
			if err != nil {
				t.Fatal(err)
			}
			m := typeMask(st) & typeMask(dt)
			for _, v := range ints {
				if got, want := v&m, f(v); got != want {
					t.Fatalf("cvt.%s.%s 0x%x: 0x%x, want 0x%x", dt, st, v, got, want)
				}
			}
		}
	}
	sat, _ := cvtFunc("f32", "f32", rn, -1, true, false)
	floats := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, 2, 1e-45, -1e-45, 1e-30, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for i := 0; i < 300; i++ {
		floats = append(floats, math.Float32frombits(rng.Uint32()))
	}
	for _, f := range floats {
		r := []uint64{uint64(math.Float32bits(f)), 0}
		opCvtSatF32(&thread{r: r}, &inst{a: 0, d: 1})
		if want := sat(r[0]); r[1] != want {
			t.Fatalf("cvt.sat.f32.f32 %g: 0x%x, want 0x%x", f, r[1], want)
		}
	}
	for _, a := range floats[:60] {
		for _, b := range floats[:60] {
			for _, c := range append(floats[:60:60], -a*b) {
				got, want := fmaRN(a, b, c), fmaF32(a, b, c, rn)
				if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
					t.Fatalf("fmaRN(%g, %g, %g) = 0x%x, want 0x%x", a, b, c, math.Float32bits(got), math.Float32bits(want))
				}
				r := []uint64{uint64(math.Float32bits(a)), uint64(math.Float32bits(b)), uint64(math.Float32bits(c)), 0}
				opFmaF32(&thread{r: r}, &inst{a: 0, b: 1, c: 2, d: 3})
				if r[3] != uint64(math.Float32bits(got)) {
					t.Fatalf("fma.rn.f32 %g %g %g: 0x%x, want 0x%x", a, b, c, r[3], math.Float32bits(got))
				}
			}
		}
	}
}

// TestResetGlobals: a module's variables, changed by a kernel, are back
// at their initializers (zero past them) after ResetGlobals, as a driver
// reusing the parsed module for a new load needs.
func TestResetGlobals(t *testing.T) {
	m, err := Load("test.ptx", ptxHeader+`.global .align 4 .b32 g[2] = {5};
.visible .entry k()
{
	.reg .b64 %rd<2>;
	mov.u64 %rd1, g;
	st.global.u32 [%rd1], 9;
	st.global.u32 [%rd1+4], 7;
	ret;
}
`)
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel("k")
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasGlobals() {
		t.Fatal("HasGlobals false for a module with a .global")
	}
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{1, 1, 1}, Memory: &testMem{}}); err != nil {
		t.Fatal(err)
	}
	g := m.vars["g"].mem
	if g[0] != 9 || g[4] != 7 {
		t.Fatalf("after the kernel: % x", g)
	}
	m.ResetGlobals()
	if want := []byte{5, 0, 0, 0, 0, 0, 0, 0}; string(g) != string(want) {
		t.Fatalf("after ResetGlobals: % x, want % x", g, want)
	}
}
