package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/fsutil"
)

// KV is one metadata pair. Value holds a Go value of the type Type names:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64, or for TypeArray a slice of one of those ([]string,
// []int32, []float32, ...).
type KV struct {
	Key   string
	Value any
}

// Builder collects metadata and tensors and writes them as one GGUF file.
// AddTensor encodes a tensor when it is added; AddTensorFunc defers it to
// Write, which then holds one tensor at a time (an export of a whole model
// adds its weights that way).
type Builder struct {
	kvs       []KV
	index     map[string]int
	tensors   []builtTensor
	names     map[string]bool
	alignment int
}

type builtTensor struct {
	name string
	dims []uint64 // ggml order: dims[0] is the fastest-varying (row length)
	typ  TensorType
	size int64  // encoded bytes
	data []byte // the encoded bytes, or nil when bytes gives them at Write
	// bytes produces the encoded bytes at Write (AddTensorFunc,
	// AddTensorBytesFunc).
	bytes func() ([]byte, error)
}

// WrittenByKey marks the GGUF files ftune's exports write (value
// WrittenBy), so that an export replaces its own earlier file and no
// other: llama.cpp keeps keys it does not know as plain metadata.
const (
	WrittenByKey = "ftune.written_by"
	WrittenBy    = "ftune"
)

// WrittenByFtune reports whether path is a GGUF file that an ftune export
// wrote.
func WrittenByFtune(path string) bool {
	f, err := Read(path)
	if err != nil {
		return false
	}
	defer f.Close()
	v, ok := f.String(WrittenByKey)
	return ok && v == WrittenBy
}

// Kinds of GGUF file ftune writes, as their general.type says.
const (
	KindModel   = "model"   // a model (WriteModelWith)
	KindAdapter = "adapter" // a LoRA adapter (WriteLoRA)
	KindImatrix = "imatrix" // an importance matrix (WriteImatrix)
)

// WrittenKind returns the general.type of a GGUF file that ftune wrote
// (KindModel, KindAdapter, KindImatrix); ok is false for any other file.
func WrittenKind(path string) (kind string, ok bool) {
	f, err := Read(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if v, mark := f.String(WrittenByKey); !mark || v != WrittenBy {
		return "", false
	}
	kind, _ = f.String("general.type")
	return kind, true
}

// Replaceable is export.ReplaceFile's test for writing a GGUF file of
// kind: nil for an earlier file of that kind that ftune wrote, else why
// it may not be replaced without --force. A file ftune wrote of another
// kind counts as the user's too: an imatrix written over the model it took
// an hour to export, or the other way round, is as lost as any file.
func Replaceable(kind string) func(path string) error {
	return func(path string) error {
		got, ok := WrittenKind(path)
		switch {
		case !ok:
			return fmt.Errorf("%w (the file there is not a GGUF file ftune wrote)", export.ErrNotOurs)
		case got != kind:
			return fmt.Errorf("the file there is %s that ftune wrote, and this writes %s (%w)", describeKind(got), describeKind(kind), export.ErrOtherKind)
		}
		return nil
	}
}

// Describe says what the GGUF file at path, which ftune wrote, is: for
// the note of an export that replaces it ("a GGUF model of tiny-base in
// q8_0, written 2026-12-07 20:59:01"). A file records no adapter or run
// (a local path in a file made to be shared); its time says which export
// it was.
func Describe(path string) string {
	s := "a GGUF file"
	if f, err := Read(path); err == nil {
		kind, _ := f.String("general.type")
		s = describeKind(kind)
		if name, ok := f.String("general.name"); ok && kind == KindModel {
			s += " of " + name
		}
		if v, ok := f.Get("general.file_type"); ok {
			if ft, ok := v.(uint32); ok {
				s += " in " + FileType(ft).String()
			}
		}
		f.Close()
	}
	if fi, err := os.Stat(path); err == nil {
		s += ", written " + fi.ModTime().Format("2006-01-02 15:04:05")
	}
	return s
}

// describeKind names a kind of GGUF file for a message.
func describeKind(kind string) string {
	switch kind {
	case KindModel:
		return "a GGUF model"
	case KindAdapter:
		return "a GGUF LoRA adapter"
	case KindImatrix:
		return "an importance matrix"
	}
	return fmt.Sprintf("a GGUF file of general.type %q", kind)
}

// NewBuilder starts a file with general.architecture set to arch and the
// default alignment (32 bytes, written as general.alignment).
func NewBuilder(arch string) *Builder {
	b := &Builder{index: map[string]int{}, names: map[string]bool{}, alignment: DefaultAlignment}
	b.Set("general.architecture", arch)
	b.Set("general.alignment", uint32(DefaultAlignment))
	return b
}

// SetAlignment changes the data alignment (a power of two, as llama.cpp
// requires).
func (b *Builder) SetAlignment(n int) error {
	if n <= 0 || n&(n-1) != 0 {
		return fmt.Errorf("gguf: alignment %d is not a power of two", n)
	}
	b.alignment = n
	b.Set("general.alignment", uint32(n))
	return nil
}

// Set adds or replaces a metadata value; keys keep the order in which they
// were first set.
func (b *Builder) Set(key string, value any) {
	if i, ok := b.index[key]; ok {
		b.kvs[i].Value = value
		return
	}
	b.index[key] = len(b.kvs)
	b.kvs = append(b.kvs, KV{key, value})
}

// Metadata returns the pairs set so far, in order.
func (b *Builder) Metadata() []KV { return append([]KV(nil), b.kvs...) }

// AddTensor encodes x (row-major, of shape shape as PyTorch writes it: the
// last dimension varies fastest) as type typ. GGUF records the dimensions
// the other way round (ne[0] = last PyTorch dimension), which this does.
func (b *Builder) AddTensor(name string, shape []int, typ TensorType, x []float32) error {
	n, err := b.check(name, shape, typ)
	if err != nil {
		return err
	}
	if n != len(x) {
		return fmt.Errorf("gguf: tensor %q: shape %v holds %d values, got %d", name, shape, n, len(x))
	}
	data, err := Encode(typ, x)
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	b.add(name, shape, typ, int64(len(data)), data, nil)
	return nil
}

// AddTensorFunc is AddTensor with the values produced by values when Write
// reaches the tensor, and dropped once encoded. An error from values (or
// values of the wrong count) ends Write with it.
func (b *Builder) AddTensorFunc(name string, shape []int, typ TensorType, values func() ([]float32, error)) error {
	return b.AddTensorBytesFunc(name, shape, typ, func() ([]byte, error) {
		x, err := values()
		if err != nil {
			return nil, err
		}
		data, err := Encode(typ, x)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", name, err)
		}
		return data, nil
	})
}

// AddTensorBytesFunc is AddTensorFunc with the tensor's bytes, already
// encoded as typ, produced when Write reaches it: for a producer that
// encodes without a float32 copy of the whole tensor. Bytes of the wrong
// size end Write with an error.
func (b *Builder) AddTensorBytesFunc(name string, shape []int, typ TensorType, bytes func() ([]byte, error)) error {
	n, err := b.check(name, shape, typ)
	if err != nil {
		return err
	}
	size, err := typ.RowBytes(n)
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	b.add(name, shape, typ, int64(size), nil, bytes)
	return nil
}

// check validates a tensor about to be added and returns its value count.
func (b *Builder) check(name string, shape []int, typ TensorType) (int, error) {
	if b.names[name] {
		return 0, fmt.Errorf("gguf: tensor %q added twice", name)
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("gguf: tensor %q: dimension %d in shape %v", name, d, shape)
		}
		n *= d
	}
	if len(shape) == 0 || len(shape) > 4 {
		return 0, fmt.Errorf("gguf: tensor %q: %d dimensions (1 to 4 allowed)", name, len(shape))
	}
	if v, _, ok := typ.blockInfo(); ok && shape[len(shape)-1]%v != 0 {
		return 0, fmt.Errorf("gguf: tensor %q: rows of %d values do not fill whole %s blocks of %d", name, shape[len(shape)-1], typ, v)
	}
	return n, nil
}

func (b *Builder) add(name string, shape []int, typ TensorType, size int64, data []byte, bytes func() ([]byte, error)) {
	b.names[name] = true
	dims := make([]uint64, len(shape))
	for i, d := range shape {
		dims[len(shape)-1-i] = uint64(d)
	}
	b.tensors = append(b.tensors, builtTensor{name: name, dims: dims, typ: typ, size: size, data: data, bytes: bytes})
}

// encoded returns t's bytes: the ones AddTensor encoded, or those its bytes
// function produces now (checked against the size its shape calls for).
func (t *builtTensor) encoded() ([]byte, error) {
	if t.bytes == nil {
		return t.data, nil
	}
	data, err := t.bytes()
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != t.size {
		return nil, fmt.Errorf("gguf: tensor %q: %d bytes produced, its shape calls for %d", t.name, len(data), t.size)
	}
	// AppendEncoded checks its own blocks' scales, but a producer may
	// quantize otherwise (AppendEncodedWeighted's quantizers, with an
	// importance matrix): no f16 scale that overflowed reaches the file.
	if err := CheckScales(t.typ, data, nil); err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: %w", t.name, err)
	}
	return data, nil
}

// DataSize is the size of the file's tensor data with its alignment
// padding: all of the file but its header and metadata.
func (b *Builder) DataSize() int64 {
	var n int64
	for _, t := range b.tensors {
		n = pad(n+t.size, int64(b.alignment))
	}
	return n
}

// WriteFile writes the file atomically (temporary file, then rename).
func (b *Builder) WriteFile(path string) error {
	return fsutil.WriteAtomic(path, 0o644, b.Write)
}

func pad(n, align int64) int64 { return (n + align - 1) / align * align }

// Write writes the file to w:
//
//	header  "GGUF", u32 version, u64 tensor count, u64 metadata count
//	kv      string key, u32 type, value   (strings: u64 length + bytes)
//	infos   string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset
//	padding zeros to the alignment
//	data    each tensor at its offset (relative to the data start), the
//	        offsets being multiples of the alignment, zero padding between.
func (b *Builder) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(b.tensors)))
	e.u64(uint64(len(b.kvs)))
	for _, kv := range b.kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value, true); err != nil {
			return fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	align := int64(b.alignment)
	var off int64
	for _, t := range b.tensors {
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(d)
		}
		e.u32(uint32(t.typ))
		e.u64(uint64(off))
		off = pad(off+t.size, align)
	}
	e.zeros(pad(e.n, align) - e.n)
	start := e.n
	for i := range b.tensors {
		data, err := b.tensors[i].encoded()
		if err != nil {
			return err
		}
		e.raw(data)
		e.zeros(pad(e.n-start, align) - (e.n - start))
	}
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

// encoder writes little-endian values and remembers the first error.
type encoder struct {
	w   io.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	k, err := e.w.Write(p)
	e.n += int64(k)
	e.err = err
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) zeros(n int64) {
	var z [64]byte
	for n > 0 {
		k := min(n, int64(len(z)))
		e.raw(z[:k])
		n -= k
	}
}

// value writes v with its type tag (when tagged) and returns an error for a
// Go type that has no GGUF type.
func (e *encoder) value(v any, tagged bool) error {
	t, err := typeOf(v)
	if err != nil {
		return err
	}
	if tagged {
		e.u32(uint32(t))
	}
	switch v := v.(type) {
	case uint8:
		e.raw([]byte{v})
	case int8:
		e.raw([]byte{byte(v)})
	case bool:
		if v {
			e.raw([]byte{1})
		} else {
			e.raw([]byte{0})
		}
	case uint16:
		binary.LittleEndian.PutUint16(e.buf[:], v)
		e.raw(e.buf[:2])
	case int16:
		binary.LittleEndian.PutUint16(e.buf[:], uint16(v))
		e.raw(e.buf[:2])
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	case string:
		e.str(v)
	default:
		return e.array(v)
	}
	return nil
}

func (e *encoder) array(v any) error {
	switch a := v.(type) {
	case []string:
		return writeArray(e, TypeString, a)
	case []uint8:
		return writeArray(e, TypeUint8, a)
	case []int8:
		return writeArray(e, TypeInt8, a)
	case []bool:
		return writeArray(e, TypeBool, a)
	case []uint16:
		return writeArray(e, TypeUint16, a)
	case []int16:
		return writeArray(e, TypeInt16, a)
	case []uint32:
		return writeArray(e, TypeUint32, a)
	case []int32:
		return writeArray(e, TypeInt32, a)
	case []float32:
		return writeArray(e, TypeFloat32, a)
	case []uint64:
		return writeArray(e, TypeUint64, a)
	case []int64:
		return writeArray(e, TypeInt64, a)
	case []float64:
		return writeArray(e, TypeFloat64, a)
	}
	return fmt.Errorf("value of Go type %T has no GGUF type", v)
}

func writeArray[T any](e *encoder, t ValueType, a []T) error {
	e.u32(uint32(t))
	e.u64(uint64(len(a)))
	for _, x := range a {
		if err := e.value(x, false); err != nil {
			return err
		}
	}
	return nil
}

// typeOf maps a Go value to its GGUF type.
func typeOf(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []string, []uint8, []int8, []bool, []uint16, []int16, []uint32, []int32, []float32, []uint64, []int64, []float64:
		return TypeArray, nil
	}
	return 0, fmt.Errorf("value of Go type %T has no GGUF type", v)
}
