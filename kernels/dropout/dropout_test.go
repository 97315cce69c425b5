package dropout

import (
	"math"
	"math/bits"
	"testing"
)

// TestDrawIsSplitMix64: draw g equals the g-th output of a sequential
// SplitMix64 generator with the key as its seed (the reference's own
// definition: state += γ, then the output mix).
func TestDrawIsSplitMix64(t *testing.T) {
	for _, key := range []uint64{0, 1, 0xdeadbeef, math.MaxUint64} {
		state := key
		for g := uint64(0); g < 1000; g++ {
			state += Gamma
			z := state
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
			z = (z ^ (z >> 27)) * 0x94D049BB133111EB
			if want := z ^ (z >> 31); Draw(key, g) != want {
				t.Fatalf("key %#x draw %d: %#x, sequential SplitMix64 %#x", key, g, Draw(key, g), want)
			}
		}
	}
	// A published value: SplitMix64 seeded with 0 first outputs
	// 0xE220A8397B1DCDAF.
	if got := Draw(0, 0); got != 0xE220A8397B1DCDAF {
		t.Fatalf("first output from seed 0: %#x, want 0xE220A8397B1DCDAF", got)
	}
}

// TestMaskSplitsAndRates: a mask drawn in parts (split at multiples of 4,
// the position moved by a quarter of the offset) equals the mask drawn
// whole; ragged tails use the low lanes of their last draw; the kept
// fraction is within 5 standard deviations of 1−p and bits are balanced.
func TestMaskSplitsAndRates(t *testing.T) {
	const n = 1 << 18
	for _, p := range []float64{0.05, 0.1, 0.5} {
		drop, keep := Threshold(p)
		whole := make([]float32, n)
		Mask(whole, 7, 3, drop, keep)
		parts := make([]float32, n)
		for lo := 0; lo < n; lo += 4 * 1000 {
			hi := min(n, lo+4*1000)
			Mask(parts[lo:hi], 7, 3+uint64(lo/4), drop, keep)
		}
		kept := 0
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("p=%v element %d: %v whole, %v in parts", p, i, whole[i], parts[i])
			}
			switch whole[i] {
			case keep:
				kept++
			case 0:
			default:
				t.Fatalf("p=%v element %d = %v: want 0 or %v", p, i, whole[i], keep)
			}
		}
		q := 1 - float64(drop)/65536
		sd := math.Sqrt(n * q * (1 - q))
		if d := math.Abs(float64(kept) - n*q); d > 5*sd {
			t.Errorf("p=%v: kept %d of %d, expected %.0f ± %.0f", p, kept, n, n*q, sd)
		}
		for _, m := range []int{1, 3, 5, 6, 7} {
			tail := make([]float32, m)
			Mask(tail, 7, 3, drop, keep)
			if !equal(tail, whole[:m]) {
				t.Errorf("p=%v: mask of %d elements %v, prefix of the whole %v", p, m, tail, whole[:m])
			}
		}
	}
	ones := 0
	for g := uint64(0); g < 4096; g++ {
		ones += bits.OnesCount64(Draw(11, g))
	}
	if d := math.Abs(float64(ones) - 4096*32); d > 5*math.Sqrt(4096*64*0.25) {
		t.Errorf("%d one bits in 4096 draws, expected 131072", ones)
	}
}

// TestMaskIsTheDefinition: Mask equals the per-element definition (lane
// i%4 of draw pos+i/4 against drop, low bits first) for every drop
// threshold's edge: p = 0 keeps all, a tiny p, and 65535/65536 keeps
// only lanes of all ones.
func TestMaskIsTheDefinition(t *testing.T) {
	for _, drop := range []uint32{0, 1, 3277, 32768, 65535} {
		const n = 4099
		got := make([]float32, n)
		Mask(got, 5, 17, drop, 1.25)
		for i := range got {
			bits := uint32(Draw(5, 17+uint64(i/4))>>(16*(i%4))) & 0xffff
			want := float32(0)
			if bits >= drop {
				want = 1.25
			}
			if got[i] != want {
				t.Fatalf("drop %d element %d: %v, want %v (lane bits %d)", drop, i, got[i], want, bits)
			}
		}
	}
}

// TestApplyIsMaskTimesX: Apply equals x·Mask element by element, bit for
// bit, including x's NaN, infinities and signed zeros under dropped
// elements (x·0, as a stored mask gives), in place and out of place.
func TestApplyIsMaskTimesX(t *testing.T) {
	const n = 1027
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%13) - 6.5
	}
	x[3], x[8], x[9], x[10] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Copysign(0, -1)), float32(math.Inf(-1))
	drop, keep := Threshold(0.3)
	mask := make([]float32, n)
	Mask(mask, 21, 8, drop, keep)
	got := make([]float32, n)
	Apply(got, x, 21, 8, drop, keep)
	inPlace := append([]float32(nil), x...)
	Apply(inPlace, inPlace, 21, 8, drop, keep)
	for i := range x {
		want := x[i] * mask[i]
		if math.Float32bits(got[i]) != math.Float32bits(want) || math.Float32bits(inPlace[i]) != math.Float32bits(want) {
			t.Fatalf("element %d: Apply %v, in place %v, x·mask %v", i, got[i], inPlace[i], want)
		}
	}
}

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestFillWideIsFillScalar: the vector kernel (AVX-512 where the CPU has
// it) gives fillScalar's elements bit for bit, for Mask and Apply (x with
// NaN, infinities and signed zeros), ragged lengths around its 32-element
// groups, positions and keys that carry across 64 bits, every drop edge,
// into a NaN-poisoned dst, and leaves what it did not fill alone.
func TestFillWideIsFillScalar(t *testing.T) {
	wide := 0
	for _, n := range []int{1, 31, 32, 33, 95, 96, 1000, 4099} {
		for _, drop := range []uint32{0, 1, 3277, 32768, 65535} {
			for _, kp := range [][2]uint64{{5, 17}, {^uint64(0), ^uint64(0) >> 2}, {0x9E3779B97F4A7C15, 3}} {
				key, pos := kp[0], kp[1]
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(i%13) - 6.5
				}
				x[0] = float32(math.NaN())
				if n > 9 {
					x[7], x[8], x[9] = float32(math.Inf(1)), float32(math.Copysign(0, -1)), float32(math.Inf(-1))
				}
				for _, in := range [][]float32{nil, x} {
					want, got := make([]float32, n), make([]float32, n)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					fillScalar(want, in, key, pos, drop, 1.25)
					filled := fillWide(got, in, key, pos, drop, 1.25)
					wide += filled
					if filled%32 != 0 || filled > n {
						t.Fatalf("n %d: fillWide filled %d", n, filled)
					}
					for i := range got {
						if i >= filled {
							if !math.IsNaN(float64(got[i])) {
								t.Fatalf("n %d: fillWide wrote element %d past the %d it reported", n, i, filled)
							}
							continue
						}
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("n %d drop %d key %#x pos %#x x %v: element %d is %v, fillScalar %v", n, drop, key, pos, in != nil, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	if wide == 0 {
		t.Log("no vector kernel on this CPU or build: fill is fillScalar")
	} else {
		t.Logf("%d elements through the vector kernel, all equal", wide)
	}
}
