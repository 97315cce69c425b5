package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// The reference below is written from ggml's block definitions, not from
// quant.go: one value at a time, in float64 where ggml's float32 arithmetic
// cannot differ (division by a power of two, integer results), with
// explicit byte offsets.

// refQ8Block quantizes 32 values as block_q8_0: bytes 0-1 the f16 scale,
// bytes 2..33 the int8 quants in element order.
func refQ8Block(x []float32) [34]byte {
	var out [34]byte
	amax := float32(0)
	for _, v := range x {
		if v < 0 {
			v = -v
		}
		if v > amax {
			amax = v
		}
	}
	d := amax / 127 // float32, as in ggml
	binary.LittleEndian.PutUint16(out[0:], tensor.F32ToF16(d))
	inv := float32(0)
	if d != 0 {
		inv = 1 / d
	}
	for j, v := range x {
		p := float64(v * inv)
		// roundf: half away from zero.
		q := math.Floor(math.Abs(p) + 0.5)
		if p < 0 {
			q = -q
		}
		out[2+j] = byte(int8(q))
	}
	return out
}

// refQ4Block quantizes 32 values as block_q4_0: bytes 0-1 the f16 scale,
// then byte j = q[j] | q[j+16]<<4.
func refQ4Block(x []float32) [18]byte {
	var out [18]byte
	var amax, m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, m = a, v
		}
	}
	d := m / -8
	binary.LittleEndian.PutUint16(out[0:], tensor.F32ToF16(d))
	inv := float32(0)
	if d != 0 {
		inv = 1 / d
	}
	q := make([]int, 32)
	for j, v := range x {
		t := math.Trunc(float64(v*inv + 8.5)) // (int8_t) cast truncates
		q[j] = int(math.Min(15, t))
	}
	for j := 0; j < 16; j++ {
		out[2+j] = byte(q[j]) | byte(q[j+16])<<4
	}
	return out
}

func refDequantQ4(blk []byte) []float64 {
	d := float64(tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
	out := make([]float64, 32)
	for j := 0; j < 16; j++ {
		out[j] = float64(int(blk[2+j]&15)-8) * d
		out[j+16] = float64(int(blk[2+j]>>4)-8) * d
	}
	return out
}

func testBlocks(rng *rand.Rand) [][]float32 {
	blocks := [][]float32{make([]float32, 32)} // all zero: d = 0
	same := make([]float32, 32)
	for i := range same {
		same[i] = 0.3
	}
	blocks = append(blocks, same)
	neg := make([]float32, 32)
	for i := range neg {
		neg[i] = float32(i) - 20 // largest magnitude negative
	}
	blocks = append(blocks, neg)
	half := make([]float32, 32)
	for i := range half {
		half[i] = float32(i-16) * 127 / 32 / 2 // many x/d land on .5 in Q8_0
	}
	blocks = append(blocks, half)
	for k := 0; k < 200; k++ {
		b := make([]float32, 32)
		scale := math.Pow(10, rng.Float64()*8-6)
		for i := range b {
			b[i] = float32(rng.NormFloat64() * scale)
		}
		blocks = append(blocks, b)
	}
	return blocks
}

func TestQ8_0MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for bi, x := range testBlocks(rng) {
		got, err := Encode(Q8_0, x)
		if err != nil {
			t.Fatal(err)
		}
		want := refQ8Block(x)
		if string(got) != string(want[:]) {
			t.Fatalf("block %d: bytes differ\n got %v\nwant %v", bi, got, want)
		}
		back, err := Decode(Q8_0, got, 32)
		if err != nil {
			t.Fatal(err)
		}
		d := float64(tensor.F16ToF32(binary.LittleEndian.Uint16(got)))
		for j, v := range x {
			if w := float32(float64(int8(want[2+j])) * d); back[j] != w {
				t.Fatalf("block %d value %d: dequantized %v, reference %v", bi, j, back[j], w)
			}
			// Error bound: half a step from rounding, plus the f16 rounding
			// of the step times at most 127 steps.
			if e := math.Abs(float64(back[j]) - float64(v)); e > d/2+128*f16Err(d) {
				t.Fatalf("block %d value %d: |%v − %v| = %g exceeds the Q8_0 bound for d = %g", bi, j, back[j], v, e, d)
			}
		}
	}
}

// f16Err bounds the rounding error of storing d as f16: half an ulp,
// relative 2^-11 for normal values and an absolute 2^-25 for subnormal ones
// (below 2^-14, as tiny weights' scales are).
func f16Err(d float64) float64 { return math.Max(math.Abs(d)*math.Pow(2, -11), math.Pow(2, -25)) }

func TestQ4_0MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for bi, x := range testBlocks(rng) {
		got, err := Encode(Q4_0, x)
		if err != nil {
			t.Fatal(err)
		}
		want := refQ4Block(x)
		if string(got) != string(want[:]) {
			t.Fatalf("block %d: bytes differ\n got %v\nwant %v", bi, got, want)
		}
		back, err := Decode(Q4_0, got, 32)
		if err != nil {
			t.Fatal(err)
		}
		ref := refDequantQ4(got)
		d := math.Abs(float64(tensor.F16ToF32(binary.LittleEndian.Uint16(got))))
		for j, v := range x {
			if float64(back[j]) != float64(float32(ref[j])) {
				t.Fatalf("block %d value %d: dequantized %v, reference %v", bi, j, back[j], ref[j])
			}
			// Error bound: a whole step |d| (the value of largest magnitude
			// sits at −8 steps; one of the opposite sign reaching +8 is
			// clamped to 7), plus the f16 rounding of d times 8 steps.
			if e := math.Abs(float64(back[j]) - float64(v)); e > d+9*f16Err(d) {
				t.Fatalf("block %d value %d: |%v − %v| = %g exceeds the Q4_0 bound for d = %g", bi, j, back[j], v, e, d)
			}
		}
	}
}

// TestQ4_0NibbleOrder pins the layout with a block worked out by hand:
// x[j] = j − 8 and x[16+j] = 7 − j. The value of largest magnitude is
// x[0] = −8, so d = −8/−8 = 1 and q = x + 8: q[j] = j, q[16+j] = 15 − j.
// ggml puts element j in the low nibble of byte j and element j+16 in the
// high nibble: byte j = j | (15 − j) << 4.
func TestQ4_0NibbleOrder(t *testing.T) {
	x := make([]float32, 32)
	for j := 0; j < 16; j++ {
		x[j] = float32(j - 8)
		x[16+j] = float32(7 - j)
	}
	got, err := Encode(Q4_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 0x00 || got[1] != 0x3c { // f16 1.0 = 0x3c00, little-endian
		t.Fatalf("scale bytes %#x %#x, want f16 1.0 (0x00 0x3c)", got[0], got[1])
	}
	for j := 0; j < 16; j++ {
		if want := byte(j) | byte(15-j)<<4; got[2+j] != want {
			t.Fatalf("byte %d = %#02x, want %#02x", j, got[2+j], want)
		}
	}
	back, _ := Decode(Q4_0, got, 32)
	for j, v := range x {
		if back[j] != v {
			t.Fatalf("value %d: %v, want %v (exact: integers with d = 1)", j, back[j], v)
		}
	}
}

// TestQ8_0HandBlock: x[j] = j − 16 for j < 32 has amax 16, d = 16/127;
// x/d = (j−16)·127/16 and q = round-half-away of that.
func TestQ8_0HandBlock(t *testing.T) {
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j - 16)
	}
	got, err := Encode(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if q := int8(got[2]); q != -127 {
		t.Fatalf("q[0] = %d, want −127 (the largest magnitude maps to ±127)", q)
	}
	if q := int8(got[2+16]); q != 0 {
		t.Fatalf("q[16] = %d, want 0", q)
	}
	if q := int8(got[2+18]); q != 16 { // 2·127/16 = 15.875 → 16
		t.Fatalf("q[18] = %d, want 16", q)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(Q8_0, make([]float32, 33)); err == nil {
		t.Fatal("33 values in Q8_0: no error")
	}
	x := make([]float32, 32)
	x[3] = float32(math.NaN())
	if _, err := Encode(Q4_0, x); err == nil {
		t.Fatal("NaN in Q4_0: no error")
	}
	if _, err := Encode(TensorType(99), x); err == nil {
		t.Fatal("unknown type: no error")
	}
	if _, err := Decode(Q8_0, make([]byte, 10), 32); err == nil {
		t.Fatal("short Q8_0 data: no error")
	}
}

func TestF16AndBF16RoundTrip(t *testing.T) {
	x := []float32{0, 1, -2.5, 65504, 1e-7, 3.14159}
	for _, typ := range []TensorType{F32, F16, BF16} {
		raw, err := Encode(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := Decode(typ, raw, len(x))
		for i, v := range x {
			var want float32
			switch typ {
			case F32:
				want = v
			case F16:
				want = tensor.F16ToF32(tensor.F32ToF16(v))
			case BF16:
				want = tensor.BF16ToF32(tensor.F32ToBF16(v))
			}
			if back[i] != want {
				t.Fatalf("%s value %d: %v, want %v", typ, i, back[i], want)
			}
		}
	}
}
