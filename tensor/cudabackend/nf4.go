package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// NF4 scales on the device. Plain: one float32 absmax per block (4 bytes
// per 64 weights, 0.5 bit per weight). Double-quantized (NF4Data.Nested,
// bitsandbytes' bnb_4bit_use_double_quant, what training's quantizer
// writes): the kernels decode each block's scale from its 8-bit code, so
// the storage holds 1 byte per block plus a float32 per 256 blocks and the
// 1 KB code book (0.127 bit per weight): for Llama-3-8B's 7.0e9 projection
// weights 0.11 GB instead of 0.44 GB.

// nf4ScaleBytes is the size of the one device buffer holding d's scales:
// the float32 absmax, or, double-quantized, the code book (256 float32,
// first so every float32 stays aligned), the nested scales and the codes.
func nf4ScaleBytes(d tensor.NF4Data) int {
	if q := d.Nested; q != nil {
		return 4*len(q.NestedCode) + 4*len(q.NestedAbsmax) + len(q.QAbsmax)
	}
	return 4 * len(d.Absmax)
}

// uploadNF4Scales copies d's scales into buf (nf4ScaleBytes(d) bytes) and
// returns the double quantization's device view (nil for float32 absmax).
func uploadNF4Scales(dev *cuda.Device, buf cuda.Ptr, d tensor.NF4Data) (*cuda.NF4Nested, error) {
	q := d.Nested
	if q == nil {
		if err := cuda.CopyHtoD(dev, buf, d.Absmax); err != nil {
			return nil, fmt.Errorf("cuda: NF4 upload: %w", err)
		}
		return nil, nil
	}
	n := &cuda.NF4Nested{NestedCode: buf, NestedBlockSize: q.NestedBlockSize, Offset: q.Offset}
	n.NestedAbsmax = buf.Add(4 * len(q.NestedCode))
	n.QAbsmax = n.NestedAbsmax.Add(4 * len(q.NestedAbsmax))
	err := cuda.CopyHtoD(dev, n.NestedCode, q.NestedCode)
	if err == nil {
		err = cuda.CopyHtoD(dev, n.NestedAbsmax, q.NestedAbsmax)
	}
	if err == nil {
		err = cuda.CopyHtoD(dev, n.QAbsmax, q.QAbsmax)
	}
	if err != nil {
		return nil, fmt.Errorf("cuda: NF4 upload (double-quantized scales): %w", err)
	}
	return n, nil
}
