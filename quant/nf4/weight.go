package nf4

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Weight is one NF4-quantized tensor (normally a linear layer's [out, in]
// weight). The fields mirror bitsandbytes' QuantState so that the GPU path
// can upload them as they are; treat them as read-only.
type Weight struct {
	// Shape of the original tensor, row-major.
	Shape []int
	// DType is the original dtype as bitsandbytes records it ("bfloat16",
	// "float16" or "float32"); dequantization restores to float32 and a
	// caller that wants the original dtype rounds.
	DType string
	// BlockSize values share one absmax (64 by default).
	BlockSize int
	// Packed holds ceil(n/2) bytes, element 2i in the high nibble of byte i.
	Packed []byte

	// Absmax is the per-block float32 scale when not double-quantized.
	Absmax []float32

	// Double quantization (Nested): the per-block scale of block b is
	// NestedCode[QAbsmax[b]]*NestedAbsmax[b/NestedBlockSize] + Offset.
	Nested          bool
	QAbsmax         []uint8
	NestedAbsmax    []float32
	NestedCode      []float32 // 256 values (the dynamic map when we quantized)
	NestedBlockSize int
	Offset          float32
}

// Options control quantization. The zero value is not valid; start from
// [DefaultOptions].
type Options struct {
	BlockSize   int    // values per absmax: 32, 64, ..., 4096
	DoubleQuant bool   // quantize the absmax values too (compress_statistics)
	DType       string // original dtype recorded in the quant state
}

// DefaultOptions is what transformers' BitsAndBytesConfig(load_in_4bit=True,
// bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True) does: blocks of
// 64, double quantization; the source dtype recorded as float32.
func DefaultOptions() Options {
	return Options{BlockSize: BlockSize, DoubleQuant: true, DType: "float32"}
}

// Quantize quantizes w (row-major, of the given shape) with DefaultOptions.
func Quantize(w []float32, shape []int) (*Weight, error) {
	return QuantizeWith(w, shape, DefaultOptions())
}

// QuantizeWith quantizes w of the given shape. Non-finite values are an
// error (they would poison a whole block's scale).
func QuantizeWith(w []float32, shape []int, opt Options) (*Weight, error) {
	n, err := numElements(shape)
	if err != nil {
		return nil, err
	}
	if n != len(w) {
		return nil, fmt.Errorf("nf4 quantize: shape %v has %d elements, data has %d", shape, n, len(w))
	}
	if err := checkBlockSize(opt.BlockSize); err != nil {
		return nil, err
	}
	if err := checkDType(opt.DType); err != nil {
		return nil, err
	}
	bs := opt.BlockSize
	nb := (n + bs - 1) / bs
	q := &Weight{
		Shape:     append([]int(nil), shape...),
		DType:     opt.DType,
		BlockSize: bs,
		Packed:    make([]byte, (n+1)/2),
	}
	absmax := make([]float32, nb)
	// Blocks are independent and start on even elements (bs is even), so
	// goroutines on disjoint block ranges write disjoint bytes.
	parallelBlocks(nb, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			lo, hi := b*bs, min((b+1)*bs, n)
			absmax[b] = quantizeBlock(q.Packed, w[lo:hi], lo, hi-lo == bs)
		}
	})
	// A block holding a NaN or an infinity has a non-finite absmax and was
	// left unquantized; the values are checked here rather than up front,
	// where a serial pass over the weight took a quarter of the time.
	for b, am := range absmax {
		if !isFinite(am) {
			for i, v := range w[b*bs : min((b+1)*bs, n)] {
				if !isFinite(v) {
					return nil, fmt.Errorf("nf4 quantize: element %d is %v (want finite values)", b*bs+i, v)
				}
			}
		}
	}
	if !opt.DoubleQuant {
		q.Absmax = absmax
		return q, nil
	}
	// bitsandbytes: offset = absmax.mean(); quantize_blockwise(absmax -
	// offset, blocksize=256) with the dynamic map. The mean is taken in
	// float64 (torch sums float32 pairwise); the result is stored, so any
	// last-bit difference is carried in the file, not a mismatch.
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	offset := float32(sum / float64(nb))
	centred := make([]float32, nb)
	for i, a := range absmax {
		centred[i] = a - offset
	}
	code := DynamicMap()
	q.Nested = true
	q.Offset = offset
	q.NestedBlockSize = NestedBlockSize
	q.NestedCode = code[:]
	q.QAbsmax, q.NestedAbsmax = quantizeBlockwise8(centred, q.NestedCode, NestedBlockSize)
	return q, nil
}

// parallelBlocks runs f over [0, nb) split into one range per CPU, or
// inline when the work is too small to pay for goroutines.
func parallelBlocks(nb int, f func(b0, b1 int)) {
	workers := runtime.GOMAXPROCS(0)
	if nb < 1024 || workers == 1 {
		f(0, nb)
		return
	}
	var wg sync.WaitGroup
	step := (nb + workers - 1) / workers
	for b0 := 0; b0 < nb; b0 += step {
		wg.Go(func() { f(b0, min(b0+step, nb)) })
	}
	wg.Wait()
}

// quantizeBlock quantizes one block of values starting at flat index lo into
// packed and returns its absmax. Like bitsandbytes' reference, a full block
// is scaled by multiplying with the float32 reciprocal of its absmax, a
// short last block by dividing, both clamped to [-1, 1].
//
// A block holding a NaN or an infinity is not quantized: its absmax, which
// is returned, is then not finite either.
func quantizeBlock(packed []byte, blk []float32, lo int, full bool) float32 {
	am := absMax(blk)
	if !isFinite(am) {
		return am
	}
	den := max(am, 1e-38)
	if full {
		// Blocks start on even elements and hold an even number of them
		// (the block size is even): two values make one byte, stored
		// whole (no read-modify-write, no parity test per value).
		inv := 1 / den
		out := packed[lo/2 : lo/2+len(blk)/2]
		for k := range out {
			first := quantizeNF4Fast(clampFinite1(blk[2*k] * inv))
			second := quantizeNF4Fast(clampFinite1(blk[2*k+1] * inv))
			out[k] = first<<4 | second
		}
		return am
	}
	for i, v := range blk {
		idx := quantizeNF4Fast(clamp1(v / den))
		j := lo + i
		if j%2 == 0 {
			packed[j/2] = idx << 4
		} else {
			packed[j/2] |= idx
		}
	}
	return am
}

// clampFinite1 is clamp1 for a finite x: plain comparisons, which rarely
// take their branch (|x| exceeds 1 only by a rounding of x·(1/absmax)),
// instead of min and max, whose NaN and signed-zero rules cost ten
// instructions a value.
func clampFinite1(x float32) float32 {
	if x > 1 {
		return 1
	}
	if x < -1 {
		return -1
	}
	return x
}

// Len is the number of elements.
func (q *Weight) Len() int {
	n, _ := numElements(q.Shape)
	return n
}

// NumBlocks is the number of absmax blocks.
func (q *Weight) NumBlocks() int {
	return (q.Len() + q.BlockSize - 1) / q.BlockSize
}

// BlockAbsmax returns the float32 scale of block b, undoing the double
// quantization the way bitsandbytes does (code*absmax, then + offset, each
// rounded to float32).
func (q *Weight) BlockAbsmax(b int) float32 {
	if !q.Nested {
		return q.Absmax[b]
	}
	// The conversion rounds the product to float32 before the sum: without
	// it Go may fuse the two into one multiply-add (arm64 does), which the
	// GPU kernels (mul.rn, add.rn) and bitsandbytes do not.
	a := float32(q.NestedCode[q.QAbsmax[b]] * q.NestedAbsmax[b/q.NestedBlockSize])
	return a + q.Offset
}

// StorageBytes is the size of the per-element data: packed values and the
// per-block scales (quantized absmax and nested absmax, or float32 absmax).
// The per-tensor constants (the two code maps, 1088 bytes) are left out, as
// in bitsandbytes' 0.516 bytes/parameter figure; see TensorBytes.
func (q *Weight) StorageBytes() int {
	if q.Nested {
		return len(q.Packed) + len(q.QAbsmax) + 4*len(q.NestedAbsmax)
	}
	return len(q.Packed) + 4*len(q.Absmax)
}

// TensorBytes is the data size of everything Tensors writes, the code maps
// and the JSON quant state included.
func (q *Weight) TensorBytes() int {
	ts, err := q.Tensors("w")
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range ts {
		n += len(t.Data)
	}
	return n
}

// Dequantize writes all elements, row-major, to dst (len >= Len()).
func (q *Weight) Dequantize(dst []float32) {
	q.DequantizeRange(dst, 0, q.Len())
}

// DequantizeRows writes rows [row0, row0+nrows) of the weight seen as a
// matrix [Shape[0], prod(Shape[1:])] to dst, row-major: the panel a GEMM
// packs, without materialising the rest of the weight. It panics if the rows
// are out of range or dst is too short (a programming error, like slicing).
func (q *Weight) DequantizeRows(dst []float32, row0, nrows int) {
	cols := q.Len()
	if len(q.Shape) > 0 {
		cols /= max(q.Shape[0], 1)
	}
	q.DequantizeRange(dst, row0*cols, (row0+nrows)*cols)
}

// DequantizeRange writes flat elements [start, end) to dst[:end-start].
// Whole aligned blocks go through DequantBlock; the ragged ends, element by
// element.
func (q *Weight) DequantizeRange(dst []float32, start, end int) {
	if start < 0 || end < start || end > q.Len() {
		panic(fmt.Sprintf("nf4: range [%d, %d) out of [0, %d)", start, end, q.Len()))
	}
	dst = dst[:end-start]
	bs := q.BlockSize
	i := start
	for i < end {
		b := i / bs
		am := q.BlockAbsmax(b)
		blockEnd := min((b+1)*bs, end)
		if i%2 == 0 && (blockEnd-i)%2 == 0 {
			DequantBlock(dst[i-start:blockEnd-start], q.Packed[i/2:blockEnd/2], am)
		} else {
			for j := i; j < blockEnd; j++ {
				dst[j-start] = Code[q.nibble(j)] * am
			}
		}
		i = blockEnd
	}
}

// nibble returns the 4-bit index of flat element j.
func (q *Weight) nibble(j int) byte {
	b := q.Packed[j/2]
	if j%2 == 0 {
		return b >> 4
	}
	return b & 15
}

func numElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("nf4: negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("nf4: shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}

func checkDType(d string) error {
	switch d {
	case "bfloat16", "float16", "float32":
		return nil
	}
	return fmt.Errorf("nf4: unsupported original dtype %q (want bfloat16, float16 or float32)", d)
}
