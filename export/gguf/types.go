package gguf

import (
	"fmt"
	"strings"
)

// Magic is the first four bytes of every GGUF file ("GGUF").
const Magic = "GGUF"

// Version is the GGUF format version this package writes (v3; v2 files,
// which differ only in nothing we read, are accepted too).
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is the type tag of a metadata value (gguf_type in ggml).
type ValueType uint32

// Metadata value types, numbered as ggml's gguf.h.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

func (t ValueType) String() string {
	names := [...]string{"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size is the encoded width of a scalar value type (0 for string/array).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// TensorType is a ggml tensor element type (ggml_type).
type TensorType uint32

// The tensor types this package reads and writes, numbered as ggml.h.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	// IQ4_NL and IQ4_XS are ggml's non-linear 4-bit types: each value an
	// index into a fixed table of 16 levels (kvalues_iq4nl) times a block
	// scale; IQ4_NL in blocks of 32 with an f16 scale, IQ4_XS in
	// super-blocks of 256 with an f16 scale and 6-bit scales per 32.
	IQ4_NL TensorType = 20
	IQ4_XS TensorType = 23
	BF16   TensorType = 30
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q4_0:
		return "Q4_0"
	case Q4_1:
		return "Q4_1"
	case Q5_0:
		return "Q5_0"
	case Q5_1:
		return "Q5_1"
	case Q8_0:
		return "Q8_0"
	case Q2_K:
		return "Q2_K"
	case Q3_K:
		return "Q3_K"
	case Q4_K:
		return "Q4_K"
	case Q5_K:
		return "Q5_K"
	case Q6_K:
		return "Q6_K"
	case IQ4_NL:
		return "IQ4_NL"
	case IQ4_XS:
		return "IQ4_XS"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}

// blockInfo returns the values per block and bytes per block of t; ok is
// false for a type this package cannot encode or decode.
func (t TensorType) blockInfo() (values, bytes int, ok bool) {
	switch t {
	case F32:
		return 1, 4, true
	case F16, BF16:
		return 1, 2, true
	case Q8_0:
		return QK8_0, 2 + QK8_0, true
	case Q4_0:
		return QK4_0, 2 + QK4_0/2, true
	case Q4_1:
		return QK4_0, 2 + 2 + QK4_0/2, true
	case Q5_0:
		return QK5, bytesQ5_0, true
	case Q5_1:
		return QK5, bytesQ5_1, true
	case Q2_K:
		return QK_K, bytesQ2_K, true
	case Q3_K:
		return QK_K, bytesQ3_K, true
	case Q4_K:
		return QK_K, bytesQ4_K, true
	case Q5_K:
		return QK_K, bytesQ5_K, true
	case Q6_K:
		return QK_K, bytesQ6_K, true
	case IQ4_NL:
		return QK4_NL, bytesIQ4_NL, true
	case IQ4_XS:
		return QK_K, bytesIQ4_XS, true
	}
	return 0, 0, false
}

// RowBytes is the encoded size of n values of type t (n a multiple of the
// block size).
func (t TensorType) RowBytes(n int) (int, error) {
	v, b, ok := t.blockInfo()
	if !ok {
		return 0, fmt.Errorf("gguf: tensor type %s is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)", t)
	}
	if n%v != 0 {
		return 0, fmt.Errorf("gguf: %d values do not fill whole %s blocks of %d", n, t, v)
	}
	return n / v * b, nil
}

// ParseTensorType reads a tensor type by its ggml name (F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS), in
// any case: the types this package can write.
func ParseTensorType(s string) (TensorType, error) {
	for _, t := range []TensorType{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS} {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl or iq4_xs expected)", s)
}

// FileType is general.file_type: the type most weights are stored in
// (llama_ftype; 1-D tensors stay F32 whatever it says).
type FileType uint32

// File types, numbered as llama.h's LLAMA_FTYPE_*.
const (
	FileF32    FileType = 0
	FileF16    FileType = 1
	FileQ4_0   FileType = 2
	FileQ4_1   FileType = 3
	FileQ8_0   FileType = 7
	FileQ5_0   FileType = 8
	FileQ5_1   FileType = 9
	FileQ2_K   FileType = 10
	FileQ3_K_S FileType = 11
	FileQ3_K_M FileType = 12
	FileQ3_K_L FileType = 13
	FileQ4_K_S FileType = 14
	FileQ4_K_M FileType = 15
	FileQ5_K_S FileType = 16
	FileQ5_K_M FileType = 17
	FileQ6_K   FileType = 18
	FileIQ4_NL FileType = 25
	FileIQ4_XS FileType = 30
	FileBF16   FileType = 32
)

// fileTypeNames are the names ParseFileType reads (any case) and String
// writes, as llama-quantize names them.
var fileTypeNames = []struct {
	f    FileType
	name string
}{
	{FileF32, "F32"}, {FileF16, "F16"}, {FileBF16, "BF16"}, {FileQ8_0, "Q8_0"}, {FileQ4_0, "Q4_0"},
	{FileQ4_1, "Q4_1"}, {FileQ5_0, "Q5_0"}, {FileQ5_1, "Q5_1"},
	{FileQ2_K, "Q2_K"}, {FileQ3_K_S, "Q3_K_S"}, {FileQ3_K_M, "Q3_K_M"}, {FileQ3_K_L, "Q3_K_L"},
	{FileQ4_K_S, "Q4_K_S"}, {FileQ4_K_M, "Q4_K_M"}, {FileQ5_K_S, "Q5_K_S"}, {FileQ5_K_M, "Q5_K_M"}, {FileQ6_K, "Q6_K"},
	{FileIQ4_NL, "IQ4_NL"}, {FileIQ4_XS, "IQ4_XS"},
}

// ParseFileType reads a file type by name: f32, f16, bf16, q8_0, q4_0,
// q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s,
// q5_k_m, q6_k, iq4_nl or iq4_xs, in any case.
func ParseFileType(s string) (FileType, error) {
	for _, n := range fileTypeNames {
		if strings.EqualFold(s, n.name) {
			return n.f, nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown file type %q (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl or iq4_xs expected)", s)
}

func (f FileType) String() string {
	for _, n := range fileTypeNames {
		if n.f == f {
			return n.name
		}
	}
	return fmt.Sprintf("FileType(%d)", uint32(f))
}

// TensorType is the type of most 2-D weights in a file of type f: the
// k-quant mixes store some in more bits (tensorType).
func (f FileType) TensorType() (TensorType, error) {
	switch f {
	case FileF32:
		return F32, nil
	case FileF16:
		return F16, nil
	case FileBF16:
		return BF16, nil
	case FileQ8_0:
		return Q8_0, nil
	case FileQ4_0:
		return Q4_0, nil
	case FileQ4_1:
		return Q4_1, nil
	case FileQ5_0:
		return Q5_0, nil
	case FileQ5_1:
		return Q5_1, nil
	case FileQ2_K:
		return Q2_K, nil
	case FileQ3_K_S, FileQ3_K_M, FileQ3_K_L:
		return Q3_K, nil
	case FileQ4_K_S, FileQ4_K_M:
		return Q4_K, nil
	case FileQ5_K_S, FileQ5_K_M:
		return Q5_K, nil
	case FileQ6_K:
		return Q6_K, nil
	case FileIQ4_NL:
		return IQ4_NL, nil
	case FileIQ4_XS:
		return IQ4_XS, nil
	}
	return 0, fmt.Errorf("gguf: file type %s is not supported", f)
}

// Token types of tokenizer.ggml.token_type (llama_token_type).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)
