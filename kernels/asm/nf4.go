package asm

// NF4Code is the NF4 code book (QLoRA; bitsandbytes' get_4bit_type("nf4")):
// quantiles of N(0,1) normalised to [-1, 1] with an exact zero, ascending;
// index i is the 4-bit value i.
var NF4Code = [16]float32{
	-1.0,
	-0.6961928009986877,
	-0.5250730514526367,
	-0.39491748809814453,
	-0.28444138169288635,
	-0.18477343022823334,
	-0.09105003625154495,
	0.0,
	0.07958029955625534,
	0.16093020141124725,
	0.24611230194568634,
	0.33791524171829224,
	0.44070982933044434,
	0.5626170039176941,
	0.7229568362236023,
	1.0,
}

// nf4Pairs[b] holds the two code values of byte b, high nibble first.
var nf4Pairs = func() (t [256][2]float32) {
	for b := range t {
		t[b] = [2]float32{NF4Code[b>>4], NF4Code[b&15]}
	}
	return t
}()

// DequantNF4Block expands packed 4-bit NF4 indices (first value in the high
// nibble, as bitsandbytes packs them) into dst scaled by absmax:
// dst[2i] = NF4Code[packed[i]>>4]·absmax, dst[2i+1] = NF4Code[packed[i]&15]·absmax.
// len(dst) must be 2·len(packed).
func DequantNF4Block(dst []float32, packed []byte, absmax float32) {
	dequantNF4Block(dst, packed, absmax)
}

// dequantNF4Block is chosen by SetImpl (AVX-512 where available).
var dequantNF4Block = DequantNF4BlockRef

// dequantNF4Blocks, when not nil, dequantizes whole blocks in one call:
// dst[b*blockSize:] from packed[b*blockSize/2:] scaled by absmax[b] for b
// < blocks, blockSize a multiple of 32 (set by SetImpl).
var dequantNF4Blocks func(dst []float32, packed []byte, absmax []float32, blocks, blockSize int)

// DequantNF4BlockRef is the pure-Go reference of DequantNF4Block.
func DequantNF4BlockRef(dst []float32, packed []byte, absmax float32) {
	dst = dst[:2*len(packed)]
	for i, b := range packed {
		p := &nf4Pairs[b]
		d := dst[2*i : 2*i+2 : 2*i+2]
		d[0] = p[0] * absmax
		d[1] = p[1] * absmax
	}
}

// DequantNF4 writes len(dst) values of an NF4 tensor starting at flat
// element index start (any alignment), each block of blockSize values
// scaled by its absmax. It is how a GEMM packs NF4 weight panels: only the
// panel's rows are expanded.
func DequantNF4(dst []float32, packed []byte, absmax []float32, blockSize, start int) {
	i := 0
	for i < len(dst) {
		e := start + i
		blk := e / blockSize
		// Whole blocks in one call where the implementation has it.
		if nb := (len(dst) - i) / blockSize; nb > 0 && e%blockSize == 0 && blockSize%32 == 0 && dequantNF4Blocks != nil {
			dequantNF4Blocks(dst[i:], packed[e/2:], absmax[blk:], nb, blockSize)
			i += nb * blockSize
			continue
		}
		end := min((blk+1)*blockSize, start+len(dst)) // stay inside one block
		n := end - e
		am := absmax[blk]
		// Fast path: an even-aligned run.
		if e%2 == 0 && n >= 2 {
			m := n &^ 1
			DequantNF4Block(dst[i:i+m], packed[e/2:(e+m)/2], am)
			i += m
			continue
		}
		b := packed[e/2]
		nib := b >> 4
		if e%2 == 1 {
			nib = b & 15
		}
		dst[i] = NF4Code[nib] * am
		i++
	}
}

// NF4Source is a GEMM right-hand operand held in NF4: the row-major matrix
// (rows×cols, element r·cols+c) is stored as packed nibbles and per-block
// absmax values; Trans uses it as op(B) = Bᵀ (a Linear's [out,in] weight
// in y = x·Wᵀ). Panels are dequantized as they are packed, so no
// full-size float32 copy exists.
type NF4Source struct {
	Packed    []byte
	Absmax    []float32
	BlockSize int
	Rows      int
	Cols      int
	Trans     bool
}

// packRows packs op(B) = B: each k step's nc values are one run of B's
// row, dequantized in one call and cut into the panels' nr-wide rows
// (one call per 32 values cost more than the dequantization itself).
func (s NF4Source) packRows(dst []float32, p0, kc, j0, nc, nr int) {
	row := getBuf(nc)
	defer putBuf(row)
	r := (*row)[:nc]
	for p := 0; p < kc; p++ {
		DequantNF4(r, s.Packed, s.Absmax, s.BlockSize, (p0+p)*s.Cols+j0)
		for s0 := 0; s0 < nc; s0 += nr {
			w := min(nr, nc-s0)
			out := dst[(s0/nr)*kc*nr+p*nr:][:nr]
			copy(out, r[s0:s0+w])
			clear(out[w:])
		}
	}
}

// PackB implements BSource.
func (s NF4Source) PackB(dst []float32, p0, kc, j0, nc, nr int) {
	if !s.Trans {
		s.packRows(dst, p0, kc, j0, nc, nr)
		return
	}
	var rows *[]float32 // w dequantized rows of kc
	for s0 := 0; s0 < nc; s0 += nr {
		w := min(nr, nc-s0)
		panel := dst[:kc*nr]
		dst = dst[kc*nr:]
		j := j0 + s0
		// op(B)[p][j] = B[j][p]: a run of kc values per column. The w rows
		// are dequantized whole (vector code) into rows, then transposed
		// into the panel by the implementation's A packer, as a float32
		// Bᵀ is; scattering each value to its column was ~4× slower.
		if rows == nil {
			rows = getBuf(nr * kc)
			defer putBuf(rows)
		}
		for jj := 0; jj < w; jj++ {
			DequantNF4((*rows)[jj*kc:(jj+1)*kc], s.Packed, s.Absmax, s.BlockSize, (j+jj)*s.Cols+p0)
		}
		packA(panel, *rows, kc, false, 0, w, 0, kc, nr, gemmCur.packRows4)
	}
}
