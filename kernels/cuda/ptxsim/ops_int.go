package ptxsim

import "math/bits"

// Integer handlers. Registers hold values zero-extended from their width;
// handlers mask results with in.mask and sign-extend inputs with in.w.

func sx(v uint64, w uint8) int64 { return int64(v<<(64-w)) >> (64 - w) }

func opNop(t *thread, in *inst) {}

func opMov(t *thread, in *inst) { t.r[in.d] = t.r[in.a] & in.mask }

func opAdd(t *thread, in *inst) { r := t.r; r[in.d] = (r[in.a] + r[in.b]) & in.mask }
func opSub(t *thread, in *inst) { r := t.r; r[in.d] = (r[in.a] - r[in.b]) & in.mask }
func opMulLo(t *thread, in *inst) {
	r := t.r
	r[in.d] = (r[in.a] * r[in.b]) & in.mask
}
func opMadLo(t *thread, in *inst) {
	r := t.r
	r[in.d] = (r[in.a]*r[in.b] + r[in.c]) & in.mask
}
func opAdd32(t *thread, in *inst) { r := t.r; r[in.d] = uint64(uint32(r[in.a] + r[in.b])) }
func opAdd64(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] + r[in.b] }

// mulHi returns the high half of the 2w-bit product.
func mulHi(a, b uint64, w uint8, signed bool) uint64 {
	if w == 64 {
		if signed {
			hi, _ := bits.Mul64(a, b)
			// signed correction
			if int64(a) < 0 {
				hi -= b
			}
			if int64(b) < 0 {
				hi -= a
			}
			return hi
		}
		hi, _ := bits.Mul64(a, b)
		return hi
	}
	if signed {
		return uint64(sx(a, w)*sx(b, w)) >> w
	}
	m := uint64(1)<<w - 1
	return (a & m) * (b & m) >> w
}

func opMulHiS(t *thread, in *inst) {
	r := t.r
	r[in.d] = mulHi(r[in.a], r[in.b], in.w, true) & in.mask
}
func opMulHiU(t *thread, in *inst) {
	r := t.r
	r[in.d] = mulHi(r[in.a], r[in.b], in.w, false) & in.mask
}
func opMadHiS(t *thread, in *inst) {
	r := t.r
	r[in.d] = (mulHi(r[in.a], r[in.b], in.w, true) + r[in.c]) & in.mask
}
func opMadHiU(t *thread, in *inst) {
	r := t.r
	r[in.d] = (mulHi(r[in.a], r[in.b], in.w, false) + r[in.c]) & in.mask
}

// .wide: the 2w-bit product (w <= 32); in.mask covers 2w bits.
func opMulWideS(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(sx(r[in.a], in.w)*sx(r[in.b], in.w)) & in.mask
}
func opMulWideU(t *thread, in *inst) {
	r := t.r
	m := uint64(1)<<in.w - 1
	r[in.d] = ((r[in.a] & m) * (r[in.b] & m)) & in.mask
}
func opMadWideS(t *thread, in *inst) {
	r := t.r
	r[in.d] = (uint64(sx(r[in.a], in.w)*sx(r[in.b], in.w)) + r[in.c]) & in.mask
}
func opMadWideU(t *thread, in *inst) {
	r := t.r
	m := uint64(1)<<in.w - 1
	r[in.d] = ((r[in.a]&m)*(r[in.b]&m) + r[in.c]) & in.mask
}

// Division by zero is undefined in PTX; the hardware gives all ones for the
// quotient and the dividend for the remainder, and so does the simulator.
func opDivU(t *thread, in *inst) {
	r := t.r
	a, b := r[in.a]&in.mask, r[in.b]&in.mask
	if b == 0 {
		r[in.d] = in.mask
		return
	}
	r[in.d] = a / b
}
func opRemU(t *thread, in *inst) {
	r := t.r
	a, b := r[in.a]&in.mask, r[in.b]&in.mask
	if b == 0 {
		r[in.d] = a
		return
	}
	r[in.d] = a % b
}
func opDivS(t *thread, in *inst) {
	r := t.r
	a, b := sx(r[in.a], in.w), sx(r[in.b], in.w)
	if b == 0 {
		r[in.d] = in.mask
		return
	}
	if b == -1 {
		r[in.d] = uint64(-a) & in.mask
		return
	}
	r[in.d] = uint64(a/b) & in.mask
}
func opRemS(t *thread, in *inst) {
	r := t.r
	a, b := sx(r[in.a], in.w), sx(r[in.b], in.w)
	if b == 0 {
		r[in.d] = uint64(a) & in.mask
		return
	}
	if b == -1 {
		r[in.d] = 0
		return
	}
	r[in.d] = uint64(a%b) & in.mask
}

func opMinS(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(min(sx(r[in.a], in.w), sx(r[in.b], in.w))) & in.mask
}
func opMaxS(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(max(sx(r[in.a], in.w), sx(r[in.b], in.w))) & in.mask
}
func opMinU(t *thread, in *inst) { r := t.r; r[in.d] = min(r[in.a]&in.mask, r[in.b]&in.mask) }
func opMaxU(t *thread, in *inst) { r := t.r; r[in.d] = max(r[in.a]&in.mask, r[in.b]&in.mask) }
func opAbsS(t *thread, in *inst) {
	r := t.r
	v := sx(r[in.a], in.w)
	if v < 0 {
		v = -v
	}
	r[in.d] = uint64(v) & in.mask
}
func opNeg(t *thread, in *inst) { r := t.r; r[in.d] = -r[in.a] & in.mask }
func opNot(t *thread, in *inst) { r := t.r; r[in.d] = ^r[in.a] & in.mask }
func opCnot(t *thread, in *inst) {
	r := t.r
	if r[in.a]&in.mask == 0 {
		r[in.d] = 1
	} else {
		r[in.d] = 0
	}
}
func opAnd(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] & r[in.b] & in.mask }
func opOr(t *thread, in *inst)  { r := t.r; r[in.d] = (r[in.a] | r[in.b]) & in.mask }
func opXor(t *thread, in *inst) { r := t.r; r[in.d] = (r[in.a] ^ r[in.b]) & in.mask }

// Shift amounts are unsigned 32-bit; amounts past the width give 0 (or the
// sign for shr.s).
func opShl(t *thread, in *inst) {
	r := t.r
	n := uint32(r[in.b])
	if n >= uint32(in.w) {
		r[in.d] = 0
		return
	}
	r[in.d] = (r[in.a] << n) & in.mask
}
func opShrU(t *thread, in *inst) {
	r := t.r
	n := uint32(r[in.b])
	if n >= uint32(in.w) {
		r[in.d] = 0
		return
	}
	r[in.d] = (r[in.a] & in.mask) >> n
}
func opShrS(t *thread, in *inst) {
	r := t.r
	n := min(uint32(r[in.b]), uint32(in.w)-1)
	r[in.d] = uint64(sx(r[in.a], in.w)>>n) & in.mask
}

// bfi.b32 d, a, b, c, e: insert the low e bits of a into b at bit c.
func opBfi(t *thread, in *inst) {
	r := t.r
	pos, n := uint32(r[in.c]&0xFF), uint32(r[in.e]&0xFF)
	b := r[in.b] & in.mask
	if n == 0 || pos >= uint32(in.w) {
		r[in.d] = b
		return
	}
	if pos+n > uint32(in.w) {
		n = uint32(in.w) - pos
	}
	m := (uint64(1)<<n - 1) << pos
	r[in.d] = (b&^m | (r[in.a]<<pos)&m) & in.mask
}

// bfe d, a, b, c: extract c bits of a from bit b, zero- or sign-extended.
func opBfeU(t *thread, in *inst) {
	r := t.r
	pos, n := uint32(r[in.b]&0xFF), uint32(r[in.c]&0xFF)
	a := r[in.a] & in.mask
	if n == 0 || pos >= uint32(in.w) {
		r[in.d] = 0
		return
	}
	v := a >> pos
	if n < 64 {
		v &= uint64(1)<<n - 1
	}
	r[in.d] = v & in.mask
}
func opBfeS(t *thread, in *inst) {
	r := t.r
	pos, n := uint32(r[in.b]&0xFF), uint32(r[in.c]&0xFF)
	a := r[in.a] & in.mask
	if n == 0 {
		r[in.d] = 0
		return
	}
	w := uint32(in.w)
	var sbit uint32
	if pos+n-1 >= w {
		sbit = w - 1
	} else {
		sbit = pos + n - 1
	}
	neg := (a>>sbit)&1 != 0
	var v uint64
	if pos < w {
		v = a >> pos
	}
	if n < 64 {
		if neg {
			v |= ^(uint64(1)<<n - 1)
		} else {
			v &= uint64(1)<<n - 1
		}
	}
	r[in.d] = v & in.mask
}

// prmt.b32 d, a, b, c (default mode): each result byte i is selected by the
// nibble i of c from the bytes {b, a}; nibble bit 3 replicates the sign.
func opPrmt(t *thread, in *inst) {
	r := t.r
	src := uint64(uint32(r[in.a])) | uint64(uint32(r[in.b]))<<32
	c := uint32(r[in.c])
	var d uint32
	for i := 0; i < 4; i++ {
		sel := (c >> (4 * i)) & 0xF
		byt := uint32(src>>(8*(sel&7))) & 0xFF
		if sel&8 != 0 {
			if byt&0x80 != 0 {
				byt = 0xFF
			} else {
				byt = 0
			}
		}
		d |= byt << (8 * i)
	}
	r[in.d] = uint64(d)
}

func opPopc(t *thread, in *inst) { r := t.r; r[in.d] = uint64(bits.OnesCount64(r[in.a] & in.mask)) }
func opClz(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(bits.LeadingZeros64(r[in.a]&in.mask) - (64 - int(in.w)))
}
func opBrev(t *thread, in *inst) {
	r := t.r
	r[in.d] = bits.Reverse64(r[in.a]) >> (64 - in.w)
}

func opSelp(t *thread, in *inst) {
	r := t.r
	if r[in.c] != 0 {
		r[in.d] = r[in.a]
	} else {
		r[in.d] = r[in.b]
	}
}

// pack/unpack: mov.bN {a, b, ...}, x and mov.bN x, {a, b, ...}; in.w is the
// element width.
func opUnpack(t *thread, in *inst) {
	r := t.r
	x := r[in.a]
	m := uint64(1)<<in.w - 1
	for i, s := range in.v {
		r[s] = (x >> (uint(i) * uint(in.w))) & m
	}
	r[slotSink] = 0
}
func opPack(t *thread, in *inst) {
	r := t.r
	m := uint64(1)<<in.w - 1
	var x uint64
	for i, s := range in.v {
		x |= (r[s] & m) << (uint(i) * uint(in.w))
	}
	r[in.d] = x
}

// lop3.b32 d, a, b, c, immLut: each result bit is bit (a<<2 | b<<1 | c) of
// the table.
func opLop3(t *thread, in *inst) {
	r := t.r
	a, b, c, lut := uint32(r[in.a]), uint32(r[in.b]), uint32(r[in.c]), uint32(r[in.e])
	var d uint32
	for i := uint32(0); i < 8; i++ {
		if lut&(1<<i) == 0 {
			continue
		}
		m := ^uint32(0)
		m &= pick(i&4 != 0, a, ^a)
		m &= pick(i&2 != 0, b, ^b)
		m &= pick(i&1 != 0, c, ^c)
		d |= m
	}
	r[in.d] = uint64(d)
}

// shf.{l,r}.{wrap,clamp}.b32 d, a, b, c: funnel shift of the 64-bit b:a by
// c (wrap: c mod 32; clamp: at most 32); in.m 1 for clamp.
func shfAmount(t *thread, in *inst) uint32 {
	n := uint32(t.r[in.c])
	if in.m == 1 {
		return min(n, 32)
	}
	return n & 31
}

func opShfL(t *thread, in *inst) {
	r := t.r
	x := uint64(uint32(r[in.b]))<<32 | uint64(uint32(r[in.a]))
	r[in.d] = uint64(uint32((x << shfAmount(t, in)) >> 32))
}

func opShfR(t *thread, in *inst) {
	r := t.r
	x := uint64(uint32(r[in.b]))<<32 | uint64(uint32(r[in.a]))
	r[in.d] = uint64(uint32(x >> shfAmount(t, in)))
}
