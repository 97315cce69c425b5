package gguf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestIQ4Index: iq4Index is the nearest level, the upper one on a tie,
// and clamps at the table's ends, checked against a linear search on
// every level, every midpoint and the floats around them.
func TestIQ4Index(t *testing.T) {
	nearest := func(v float32) uint8 {
		best := uint8(0)
		for i := 1; i < 16; i++ {
			// ≤: the later (upper) level wins a tie, as in ggml.
			if math.Abs(float64(v)-float64(iq4Levels[i])) <= math.Abs(float64(v)-float64(iq4Levels[best])) {
				best = uint8(i)
			}
		}
		return best
	}
	var probes []float32
	for i, l := range iq4Levels {
		probes = append(probes, float32(l))
		if i > 0 {
			probes = append(probes, (float32(l)+float32(iq4Levels[i-1]))/2)
		}
	}
	probes = append(probes, -1000, -127.5, 113.5, 1000, 0, float32(math.Copysign(0, -1)))
	for f := -130; f <= 115; f++ { // every integer part, and the floats around it
		probes = append(probes, float32(f), float32(f)+0.5, float32(f)+0.25)
	}
	for _, p := range probes {
		for _, v := range []float32{p, math.Nextafter32(p, -1e9), math.Nextafter32(p, 1e9)} {
			if got, want := iq4Index(v), nearest(v); got != want {
				t.Errorf("iq4Index(%v) = %d, the nearest level is index %d", v, got, want)
			}
		}
	}
	if got := iq4Index(float32(math.NaN())); got != 15 {
		t.Errorf("iq4Index(NaN) = %d; ggml's search ends at 15", got)
	}
}

// TestKQuantsIQ4Error: on TestKQuantsError's Gaussian, the round-trip
// relative RMS error of IQ4_NL and IQ4_XS (4.5 and 4.25 bits a weight)
// sits below Q3_K's and near Q4_K's (within a fifth of it), below
// Q4_0's (the non-linear levels fit a bell-shaped block better than
// evenly spaced ones), and IQ4_XS's 6-bit sub-block scales cost it little
// against IQ4_NL's f16 ones.
func TestKQuantsIQ4Error(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 64*QK_K)
	for i := range x {
		x[i] = float32(0.02 * r.NormFloat64())
	}
	e := map[TensorType]float64{}
	for _, typ := range []TensorType{Q3_K, Q4_0, Q4_K, IQ4_NL, IQ4_XS} {
		b, err := Encode(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		y, err := Decode(typ, b, len(x))
		if err != nil {
			t.Fatal(err)
		}
		var se, ss float64
		for i := range x {
			d := float64(y[i] - x[i])
			se += d * d
			ss += float64(x[i]) * float64(x[i])
		}
		e[typ] = math.Sqrt(se / ss)
		t.Logf("%s: relative RMS error %.4f", typ, e[typ])
	}
	for _, typ := range []TensorType{IQ4_NL, IQ4_XS} {
		if !(e[typ] < e[Q3_K]) || !(e[typ] < e[Q4_0]) || !(e[typ] < 1.2*e[Q4_K]) {
			t.Errorf("%s error %.4f: want below Q3_K's %.4f and Q4_0's %.4f, and within 1.2× Q4_K's %.4f", typ, e[typ], e[Q3_K], e[Q4_0], e[Q4_K])
		}
	}
	if !(e[IQ4_XS] < 1.05*e[IQ4_NL]) {
		t.Errorf("IQ4_XS error %.4f more than 5%% above IQ4_NL's %.4f", e[IQ4_XS], e[IQ4_NL])
	}
}

// TestIQ4Zeros: a block of zeros is d = 0 (IQ4_XS: −0, as ggml stores it)
// with every index 8 (the level 1, ggml's nearest to 0).
func TestIQ4Zeros(t *testing.T) {
	zeros := make([]float32, QK_K)
	nl, _ := Encode(IQ4_NL, zeros[:QK4_NL])
	if want := append([]byte{0, 0}, bytes.Repeat([]byte{0x88}, 16)...); !bytes.Equal(nl, want) {
		t.Errorf("IQ4_NL zeros: % x, want % x", nl, want)
	}
	xs, _ := Encode(IQ4_XS, zeros)
	// Every sub-block level 0, stored as 32: low nibbles 0, high bits 2.
	want := append([]byte{0, 0x80, 0xaa, 0xaa, 0, 0, 0, 0}, bytes.Repeat([]byte{0x88}, 128)...)
	if !bytes.Equal(xs, want) {
		t.Errorf("IQ4_XS zeros: % x, want % x", xs, want)
	}
}

// BenchmarkEncode times the quantizers on one core over a million
// Gaussian weights (values/s as the MB/s column, 4 bytes a value).
func BenchmarkEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	imp := make([]float32, 4096)
	for i := range imp {
		imp[i] = float32(r.ExpFloat64())
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, t := range []TensorType{Q4_0, Q4_K, Q6_K, IQ4_NL, IQ4_XS} {
		b.Run(t.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if _, err := AppendEncoded(nil, t, x); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(t.String()+"-imatrix", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if _, err := AppendEncodedWeighted(nil, t, x, len(imp), imp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
