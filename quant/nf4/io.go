package nf4

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/ftune/ftune/internal/pyfmt"
	"github.com/ftune/ftune/internal/safetensors"
)

// Key suffixes of bitsandbytes' packed QuantState (QuantState.as_dict with
// packed=True, prefixed by Linear4bit with "weight.").
const (
	SuffixAbsmax         = ".absmax"
	SuffixQuantMap       = ".quant_map"
	SuffixNestedAbsmax   = ".nested_absmax"
	SuffixNestedQuantMap = ".nested_quant_map"
	SuffixQuantState     = ".quant_state.bitsandbytes__nf4"
	suffixQuantStateFP4  = ".quant_state.bitsandbytes__fp4"
)

// TensorSource is what Load reads from: a *safetensors.File or a
// *safetensors.Set (a sharded model folder).
type TensorSource interface {
	Has(name string) bool
	Tensor(name string) (safetensors.Tensor, error)
}

// IsQuantized reports whether src holds an NF4 weight under name (the
// packed quant state key is present).
func IsQuantized(src TensorSource, name string) bool {
	return src.Has(name + SuffixQuantState)
}

// quantStateJSON is the non-tensor part of the quant state, in the order
// QuantState.as_dict builds it (json.dumps keeps insertion order).
type quantStateJSON struct {
	QuantType       string   `json:"quant_type"`
	BlockSize       int      `json:"blocksize"`
	DType           string   `json:"dtype"`
	Shape           []int    `json:"shape"`
	NestedBlockSize *int     `json:"nested_blocksize,omitempty"`
	NestedDType     *string  `json:"nested_dtype,omitempty"`
	NestedOffset    *float64 `json:"nested_offset,omitempty"`
}

// Tensors returns the tensors bitsandbytes writes for a Linear4bit weight
// called name (e.g. "model.layers.0.self_attn.q_proj.weight"): name itself
// (packed U8 [ceil(n/2), 1]), name.absmax (U8 when double-quantized, else
// F32), name.quant_map (F32 [16]), name.nested_absmax and
// name.nested_quant_map (F32, double quantization only) and
// name.quant_state.bitsandbytes__nf4 (U8: JSON text). Data is freshly
// allocated except the packed weight, which aliases q.Packed.
func (q *Weight) Tensors(name string) ([]safetensors.Tensor, error) {
	if err := q.validate(); err != nil {
		return nil, fmt.Errorf("nf4 %s: %w", name, err)
	}
	qs := quantStateJSON{QuantType: "nf4", BlockSize: q.BlockSize, DType: q.DType, Shape: q.Shape}
	ts := []safetensors.Tensor{{Name: name, DType: safetensors.U8, Shape: []int{len(q.Packed), 1}, Data: q.Packed}}
	if q.Nested {
		nbs, nd, off := q.NestedBlockSize, "float32", float64(q.Offset)
		qs.NestedBlockSize, qs.NestedDType, qs.NestedOffset = &nbs, &nd, &off
		ts = append(ts,
			safetensors.Tensor{Name: name + SuffixAbsmax, DType: safetensors.U8, Shape: []int{len(q.QAbsmax)}, Data: bytes.Clone(q.QAbsmax)},
			f32Tensor(name+SuffixQuantMap, Code[:]),
			f32Tensor(name+SuffixNestedAbsmax, q.NestedAbsmax),
			f32Tensor(name+SuffixNestedQuantMap, q.NestedCode))
	} else {
		ts = append(ts, f32Tensor(name+SuffixAbsmax, q.Absmax), f32Tensor(name+SuffixQuantMap, Code[:]))
	}
	js := pythonJSON(qs)
	ts = append(ts, safetensors.Tensor{Name: name + SuffixQuantState, DType: safetensors.U8, Shape: []int{len(js)}, Data: js})
	return ts, nil
}

// Load reads the NF4 weight called name from src, in bitsandbytes' layout.
// All data is copied, so the result outlives src. Errors name the tensor and
// what was expected; nothing partial is returned.
func Load(src TensorSource, name string) (*Weight, error) {
	if !src.Has(name + SuffixQuantState) {
		if src.Has(name + suffixQuantStateFP4) {
			return nil, fmt.Errorf("nf4 load %s: quant type fp4 is not supported (only nf4)", name)
		}
		return nil, fmt.Errorf("nf4 load %s: no %s%s tensor: not a bitsandbytes 4-bit weight", name, name, SuffixQuantState)
	}
	qsT, err := fetchTensor(src, name+SuffixQuantState)
	if err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	var qs quantStateJSON
	if err := json.Unmarshal(qsT.Data, &qs); err != nil {
		return nil, fmt.Errorf("nf4 load %s: quant state %s%s is not valid JSON: %w", name, name, SuffixQuantState, err)
	}
	if qs.QuantType != "nf4" {
		return nil, fmt.Errorf("nf4 load %s: quant_type %q, want \"nf4\"", name, qs.QuantType)
	}
	if qs.Shape == nil {
		return nil, fmt.Errorf("nf4 load %s: quant state has no shape", name)
	}
	if err := checkBlockSize(qs.BlockSize); err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	if err := checkDType(qs.DType); err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	q := &Weight{Shape: qs.Shape, DType: qs.DType, BlockSize: qs.BlockSize}
	n, err := numElements(q.Shape)
	if err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}

	packed, err := fetchTensor(src, name)
	if err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	// quant_storage other than uint8 only reinterprets the same bytes.
	if len(packed.Data) != (n+1)/2 {
		return nil, fmt.Errorf("nf4 load %s: packed weight has %d bytes, shape %v needs %d", name, len(packed.Data), q.Shape, (n+1)/2)
	}
	q.Packed = bytes.Clone(packed.Data)

	qmap, err := readF32(src, name+SuffixQuantMap, 16)
	if err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	for i, v := range qmap {
		if math.Abs(float64(v-Code[i])) > 1e-6 {
			return nil, fmt.Errorf("nf4 load %s: %s%s[%d] = %v, the NF4 code is %v (not an NF4 map)", name, name, SuffixQuantMap, i, v, Code[i])
		}
	}

	nb := (n + q.BlockSize - 1) / q.BlockSize
	if qs.NestedOffset == nil {
		q.Absmax, err = readF32(src, name+SuffixAbsmax, nb)
		if err != nil {
			return nil, fmt.Errorf("nf4 load %s: %w", name, err)
		}
		return q, q.validate()
	}

	q.Nested = true
	q.Offset = float32(*qs.NestedOffset)
	if qs.NestedBlockSize == nil || *qs.NestedBlockSize <= 0 {
		return nil, fmt.Errorf("nf4 load %s: quant state has nested_offset but no valid nested_blocksize", name)
	}
	q.NestedBlockSize = *qs.NestedBlockSize
	if qs.NestedDType != nil && *qs.NestedDType != "float32" {
		return nil, fmt.Errorf("nf4 load %s: nested_dtype %q, want float32", name, *qs.NestedDType)
	}
	abs, err := fetchTensor(src, name+SuffixAbsmax)
	if err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	if abs.DType != safetensors.U8 || len(abs.Data) != nb {
		return nil, fmt.Errorf("nf4 load %s: %s%s is %s with %d elements, want U8 with %d (one per block of %d)",
			name, name, SuffixAbsmax, abs.DType, abs.NumElements(), nb, q.BlockSize)
	}
	q.QAbsmax = bytes.Clone(abs.Data)
	nnb := (nb + q.NestedBlockSize - 1) / q.NestedBlockSize
	if q.NestedAbsmax, err = readF32(src, name+SuffixNestedAbsmax, nnb); err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	if q.NestedCode, err = readF32(src, name+SuffixNestedQuantMap, 256); err != nil {
		return nil, fmt.Errorf("nf4 load %s: %w", name, err)
	}
	return q, q.validate()
}

// validate checks that the slices agree with the shape and block sizes.
func (q *Weight) validate() error {
	n, err := numElements(q.Shape)
	if err != nil {
		return err
	}
	if err := checkBlockSize(q.BlockSize); err != nil {
		return err
	}
	if err := checkDType(q.DType); err != nil {
		return err
	}
	if len(q.Packed) != (n+1)/2 {
		return fmt.Errorf("packed data has %d bytes, shape %v needs %d", len(q.Packed), q.Shape, (n+1)/2)
	}
	nb := (n + q.BlockSize - 1) / q.BlockSize
	if !q.Nested {
		if len(q.Absmax) != nb {
			return fmt.Errorf("%d absmax values, want %d", len(q.Absmax), nb)
		}
		return nil
	}
	if q.NestedBlockSize <= 0 {
		return fmt.Errorf("nested block size %d", q.NestedBlockSize)
	}
	nnb := (nb + q.NestedBlockSize - 1) / q.NestedBlockSize
	switch {
	case len(q.QAbsmax) != nb:
		return fmt.Errorf("%d quantized absmax values, want %d", len(q.QAbsmax), nb)
	case len(q.NestedAbsmax) != nnb:
		return fmt.Errorf("%d nested absmax values, want %d", len(q.NestedAbsmax), nnb)
	case len(q.NestedCode) != 256:
		return fmt.Errorf("nested code map has %d values, want 256", len(q.NestedCode))
	}
	return nil
}

// fetchTensor fetches name from src, saying which tensor is missing.
func fetchTensor(src TensorSource, name string) (safetensors.Tensor, error) {
	if !src.Has(name) {
		return safetensors.Tensor{}, fmt.Errorf("missing tensor %q", name)
	}
	return src.Tensor(name)
}

func readF32(src TensorSource, name string, want int) ([]float32, error) {
	t, err := fetchTensor(src, name)
	if err != nil {
		return nil, err
	}
	if t.DType != safetensors.F32 || t.NumElements() != want {
		return nil, fmt.Errorf("tensor %q is %s %v, want F32 with %d elements", name, t.DType, t.Shape, want)
	}
	out := make([]float32, want)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

func f32Tensor(name string, x []float32) safetensors.Tensor {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int{len(x)}, Data: b}
}

// pythonJSON writes the quant state as Python's json.dumps does (", " and
// ": " separators, keys in as_dict order, floats as repr), so that a file
// we write is byte-identical to bitsandbytes' for the same state.
func pythonJSON(qs quantStateJSON) []byte {
	var b bytes.Buffer
	str := func(s string) { v, _ := json.Marshal(s); b.Write(v) }
	b.WriteString(`{"quant_type": `)
	str(qs.QuantType)
	b.WriteString(`, "blocksize": ` + strconv.Itoa(qs.BlockSize) + `, "dtype": `)
	str(qs.DType)
	b.WriteString(`, "shape": [`)
	for i, d := range qs.Shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteString("]")
	if qs.NestedOffset != nil {
		b.WriteString(`, "nested_blocksize": ` + strconv.Itoa(*qs.NestedBlockSize) + `, "nested_dtype": `)
		str(*qs.NestedDType)
		b.WriteString(`, "nested_offset": ` + pyfmt.JSONFloat(*qs.NestedOffset))
	}
	b.WriteString("}")
	return b.Bytes()
}

// TransformersQuantizationConfig is the "quantization_config" object that
// config.json of a folder of NF4 weights carries so that transformers
// (AutoModel.from_pretrained) loads it as pre-quantized bitsandbytes 4-bit:
// BitsAndBytesConfig.to_dict() for load_in_4bit, nf4 and double
// quantization. computeDType is bnb_4bit_compute_dtype ("bfloat16",
// "float16", "float32"); skipModules lists modules left unquantized (nil
// lets transformers keep its default, the output head).
func TransformersQuantizationConfig(computeDType string, skipModules []string) (map[string]any, error) {
	if err := checkDType(computeDType); err != nil {
		return nil, err
	}
	var skip any
	if skipModules != nil {
		skip = skipModules
	}
	return map[string]any{
		"quant_method":                     "bitsandbytes",
		"_load_in_4bit":                    true,
		"_load_in_8bit":                    false,
		"load_in_4bit":                     true,
		"load_in_8bit":                     false,
		"bnb_4bit_quant_type":              "nf4",
		"bnb_4bit_use_double_quant":        true,
		"bnb_4bit_compute_dtype":           computeDType,
		"bnb_4bit_quant_storage":           "uint8",
		"llm_int8_threshold":               6.0,
		"llm_int8_skip_modules":            skip,
		"llm_int8_enable_fp32_cpu_offload": false,
		"llm_int8_has_fp16_weight":         false,
	}, nil
}
