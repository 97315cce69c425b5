package prep

import (
	"math"
	"slices"
	"testing"
)

func TestRandIsDeterministicAndUniform(t *testing.T) {
	a, b := NewRand(9), NewRand(9)
	for range 100 {
		if a.Uint64() != b.Uint64() {
			t.Fatal("same seed, different streams")
		}
	}
	// Chi-square over 10 buckets; 1e5 draws; the 0.999 quantile of
	// chi2(9) is 27.9.
	r := NewRand(1)
	var counts [10]int
	const n = 100_000
	for range n {
		counts[r.Intn(10)]++
	}
	chi := 0.0
	for _, c := range counts {
		d := float64(c) - n/10
		chi += d * d / (n / 10)
	}
	if chi > 27.9 {
		t.Errorf("Intn(10) chi-square %.1f over %v", chi, counts)
	}
	sum := 0.0
	for range n {
		f := r.Float64()
		if f < 0 || f >= 1 {
			t.Fatalf("Float64 %v out of [0,1)", f)
		}
		sum += f
	}
	// Mean of n uniforms: sd 0.289/sqrt(n) = 0.0009; allow 5 sd.
	if m := sum / n; math.Abs(m-0.5) > 0.0046 {
		t.Errorf("Float64 mean %v", m)
	}
}

func TestShuffleIsAPermutation(t *testing.T) {
	for _, n := range []int{0, 1, 2, 17, 1000} {
		p := Perm(n, NewRand(uint64(n)))
		q := slices.Clone(p)
		slices.Sort(q)
		for i := range q {
			if q[i] != i {
				t.Fatalf("Perm(%d) is not a permutation", n)
			}
		}
	}
	if slices.Equal(Perm(50, NewRand(1)), Perm(50, NewRand(2))) {
		t.Error("different seeds gave the same permutation")
	}
}

func TestSplitRatio(t *testing.T) {
	items := make([]int, 103)
	for i := range items {
		items[i] = i
	}
	for _, tc := range []struct {
		frac    float64
		n, want int
	}{{0.1, 103, 10}, {0.25, 103, 26}, {0, 103, 0}, {0.01, 10, 1}, {0.5, 1, 1}, {1, 103, 103}} {
		tr, va := SplitRatio(items[:tc.n], tc.frac, 5)
		if len(va) != tc.want || len(tr)+len(va) != tc.n {
			t.Errorf("frac %v of %d: %d train, %d val; want %d val", tc.frac, tc.n, len(tr), len(va), tc.want)
		}
		all := append(slices.Clone(tr), va...)
		slices.Sort(all)
		if !slices.Equal(all, items[:tc.n]) {
			t.Errorf("frac %v: split is not a partition", tc.frac)
		}
		tr2, va2 := SplitRatio(items[:tc.n], tc.frac, 5)
		if !slices.Equal(tr, tr2) || !slices.Equal(va, va2) {
			t.Errorf("frac %v: same seed, different split", tc.frac)
		}
	}
}
