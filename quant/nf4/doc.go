// Package nf4 is bitsandbytes-compatible 4-bit NormalFloat (NF4)
// quantization of frozen base weights, as QLoRA uses it.
//
// Layout (identical to bitsandbytes' quantize_4bit with quant_type "nf4"):
//
//   - The weight is flattened in row-major order and cut into blocks of
//     BlockSize (64) values; the last block may be short.
//   - Each block is scaled by its absolute maximum into [-1, 1] and every
//     value is replaced by the index of the nearest of the 16 NF4 code values
//     ([Code]), ties going to the lower index (torch.bucketize over the
//     midpoints).
//   - Two indices share a byte, the first element in the HIGH nibble; an odd
//     element count leaves the last low nibble 0.
//   - With double quantization (bitsandbytes' compress_statistics=True, the
//     transformers default for bnb_4bit_use_double_quant), the float32
//     absmax values are themselves quantized: their mean is subtracted
//     (Offset), then they are 8-bit blockwise quantized with the signed
//     "dynamic" map ([DynamicMap]) in blocks of 256, each block with its own
//     float32 absmax (NestedAbsmax). Dequantization recovers a block's scale
//     as DynamicMap[q]*NestedAbsmax[b/256] + Offset.
//
// Storage is 0.5 byte per value plus 1 byte per 64 values plus 4 bytes per
// 16384 values: 0.5159 bytes per parameter (bitsandbytes' "about 0.516").
//
// Files use the key layout that bitsandbytes' Linear4bit writes into a
// transformers state dict (see [Weight.Tensors] and [Load]): `weight`
// (packed uint8, shape [ceil(n/2), 1]), `weight.absmax`, `weight.quant_map`,
// `weight.nested_absmax`, `weight.nested_quant_map` and
// `weight.quant_state.bitsandbytes__nf4` (a JSON object stored as uint8
// bytes: quant_type, blocksize, dtype, shape, nested_blocksize,
// nested_dtype, nested_offset).
//
// Dequantization never needs a full-size float copy: [Weight.DequantizeRows]
// expands a panel of rows for a GEMM's packing step. Its inner loop is
// [DequantBlock], a function on slices; [DequantBlockGeneric] is the pure-Go
// reference that a SIMD version (kernels/asm) must match bit for bit.
package nf4
