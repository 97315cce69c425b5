package half

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The cases are checked by hand and match torch.tensor(x).bfloat16().
func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		name string
		in   uint32 // float32 bits
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"tie, even stays", 0x3f808000, 0x3f80},
		{"tie, odd rounds up to even", 0x3f818000, 0x3f82},
		{"just above a tie", 0x3f808001, 0x3f81},
		{"just below a tie", 0x3f807fff, 0x3f80},
		{"negative keeps its sign", 0xbf808001, 0xbf81},
		{"+0", 0x00000000, 0x0000},
		{"-0", 0x80000000, 0x8000},
		{"+Inf", 0x7f800000, 0x7f80},
		{"-Inf", 0xff800000, 0xff80},
		{"max float32 overflows to +Inf", 0x7f7fffff, 0x7f80},
		{"-max float32 overflows to -Inf", 0xff7fffff, 0xff80},
		{"smallest subnormal rounds to +0", 0x00000001, 0x0000},
		{"subnormal tie to even 0", 0x00008000, 0x0000},
		{"subnormal tie to even 2", 0x00018000, 0x0002},
		{"subnormal kept, not flushed", 0x00012345, 0x0001},
		{"negative subnormal", 0x80030000, 0x8003},
		{"quiet NaN", 0x7fc00000, BF16NaN},
		{"signalling NaN becomes quiet", 0x7f800001, BF16NaN},
		{"NaN payload that would carry into the exponent", 0x7fffffff, BF16NaN},
		{"negative NaN (torch drops the sign)", 0xffc00000, BF16NaN},
		{"negative NaN that would carry to -0", 0xffffffff, BF16NaN},
	}
	for _, c := range cases {
		in := math.Float32frombits(c.in)
		if got := F32ToBF16(in); got != c.want {
			t.Errorf("%s: F32ToBF16(%#08x) = %#04x, want %#04x", c.name, c.in, got, c.want)
		}
		if back := BF16ToF32(c.want); F32ToBF16(back) != c.want {
			t.Errorf("%s: bf16 %#04x does not round-trip", c.name, c.want)
		}
	}
	if v := BF16ToF32(BF16NaN); !math.IsNaN(float64(v)) || math.Float32bits(v)&(1<<22) == 0 {
		t.Errorf("BF16NaN widens to %#08x, want a quiet NaN", math.Float32bits(v))
	}
}

// TestBF16RoundingIsMonotonic walks float32 patterns in steps and checks
// that rounding never goes backwards and lands on a neighbour of the input.
func TestBF16RoundingIsMonotonic(t *testing.T) {
	prev := float32(math.Inf(-1))
	for u := uint64(0xff7fffff); u >= 0x80000000; u -= 0xfff1 {
		checkRoundStep(t, math.Float32frombits(uint32(u)), &prev)
	}
	for u := uint64(0); u <= 0x7f7fffff; u += 0xfff1 {
		checkRoundStep(t, math.Float32frombits(uint32(u)), &prev)
	}
}

func checkRoundStep(t *testing.T, f float32, prev *float32) {
	t.Helper()
	r := BF16ToF32(F32ToBF16(f))
	if r < *prev {
		t.Fatalf("F32ToBF16(%g) = %g, below the rounding %g of a smaller input", f, r, *prev)
	}
	// Within half a bf16 step: 2^-8 relative for normal numbers, 2^-134
	// for subnormals; or rounded to ±Inf at the top.
	halfStep := max(math.Abs(float64(f))/256, math.Ldexp(1, -134))
	if !math.IsInf(float64(r), 0) && math.Abs(float64(r)-float64(f)) > halfStep {
		t.Fatalf("F32ToBF16(%g) = %g, more than half a step away", f, r)
	}
	*prev = r
}

// TestOneBF16Rounding fails when a Go file outside this package rounds to
// bfloat16 by hand (the "+ 0x7fff" bias), as four copies did, with
// different NaN rules: round through F32ToBF16 instead.
func TestOneBF16Rounding(t *testing.T) {
	root := moduleRoot(t)
	bias := regexp.MustCompile(`0[xX]7[fF]{3}\s*\+|\+\s*0[xX]7[fF]{3}\b`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if !strings.HasSuffix(path, ".go") || filepath.Dir(rel) == filepath.Join("internal", "half") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if bias.MatchString(line) {
				t.Errorf("%s:%d rounds to bfloat16 by hand; use half.F32ToBF16: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func TestF16RoundTrip(t *testing.T) {
	// Every finite half value converts to float32 and back exactly.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN payloads
		}
		f := F16ToF32(uint16(h))
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
	}
	if got := F16ToF32(0x3c00); got != 1 {
		t.Errorf("half 1.0 = %g", got)
	}
	if got := F16ToF32(0x0001); got != float32(math.Ldexp(1, -24)) {
		t.Errorf("smallest subnormal = %g", got)
	}
	if got := F32ToF16(1e6); got != 0x7c00 {
		t.Errorf("overflow gives %#x, want +Inf", got)
	}
}
