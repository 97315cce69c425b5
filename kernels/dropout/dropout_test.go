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

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
