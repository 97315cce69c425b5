package gguf

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/ftune/ftune/internal/fsutil"
)

// ErrFormat marks a file that is not valid GGUF.
var ErrFormat = errors.New("gguf: invalid file")

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name string
	// Dims in GGUF order: Dims[0] is the fastest-varying dimension (a
	// row's length), the reverse of PyTorch's shape.
	Dims   []uint64
	Type   TensorType
	Offset uint64 // from the start of the data section
	Size   int64  // encoded bytes
}

// Shape returns the dimensions in PyTorch (row-major) order.
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// NumElements is the product of the dimensions.
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// File is an open GGUF file: its metadata and tensor directory are read at
// Open; tensor data is read on demand. Close releases the file.
type File struct {
	Path      string
	Version   uint32
	Metadata  []KV // in file order
	Tensors   []TensorInfo
	Alignment int
	DataStart int64

	byKey  map[string]int
	byName map[string]int
	f      *os.File
}

// Read opens and parses a GGUF file.
func Read(path string) (*File, error) {
	f, _, err := fsutil.OpenRegular(path) // a named pipe would block the open
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gguf: %w", err)
	}
	g := &File{Path: path, f: f, byKey: map[string]int{}, byName: map[string]int{}}
	d := &decoder{r: bufio.NewReaderSize(f, 1<<20), size: st.Size()}
	if err := g.parse(d, st.Size()); err != nil {
		f.Close()
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	return g, nil
}

func (g *File) parse(d *decoder, size int64) error {
	magic := d.bytes(4)
	if d.err == nil && string(magic) != Magic {
		return fmt.Errorf("%w: magic %q, expected %q", ErrFormat, magic, Magic)
	}
	g.Version = d.u32()
	if d.err == nil && g.Version != 2 && g.Version != 3 {
		return fmt.Errorf("%w: version %d (2 or 3 supported)", ErrFormat, g.Version)
	}
	nTensors, nKV := d.u64(), d.u64()
	// Every pair and tensor takes at least 8 bytes; larger counts cannot fit.
	if d.err == nil && (nTensors > uint64(size)/8 || nKV > uint64(size)/8) {
		return fmt.Errorf("%w: %d tensors and %d metadata pairs cannot fit in %d bytes", ErrFormat, nTensors, nKV, size)
	}
	for i := uint64(0); i < nKV && d.err == nil; i++ {
		key := d.str()
		t := ValueType(d.u32())
		v := d.value(t, 0)
		if d.err != nil {
			return fmt.Errorf("metadata pair %d (%q): %w", i, key, d.err)
		}
		if _, dup := g.byKey[key]; dup {
			return fmt.Errorf("%w: metadata key %q appears twice", ErrFormat, key)
		}
		g.byKey[key] = len(g.Metadata)
		g.Metadata = append(g.Metadata, KV{key, v})
	}
	g.Alignment = DefaultAlignment
	if v, ok := g.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("%w: general.alignment %v is not a uint32 power of two", ErrFormat, v)
		}
		g.Alignment = int(a)
	}
	for i := uint64(0); i < nTensors && d.err == nil; i++ {
		var t TensorInfo
		t.Name = d.str()
		nd := d.u32()
		if d.err == nil && (nd == 0 || nd > 4) {
			return fmt.Errorf("%w: tensor %q has %d dimensions (1 to 4)", ErrFormat, t.Name, nd)
		}
		for j := uint32(0); j < nd && d.err == nil; j++ {
			t.Dims = append(t.Dims, d.u64())
		}
		t.Type = TensorType(d.u32())
		t.Offset = d.u64()
		if d.err != nil {
			break
		}
		if _, dup := g.byName[t.Name]; dup {
			return fmt.Errorf("%w: tensor %q appears twice", ErrFormat, t.Name)
		}
		n := uint64(1)
		for _, x := range t.Dims {
			if x == 0 || x > uint64(size)*2 || n > uint64(size)*2/x {
				return fmt.Errorf("%w: tensor %q: dimensions %v do not fit the file", ErrFormat, t.Name, t.Dims)
			}
			n *= x
		}
		if t.Offset%uint64(g.Alignment) != 0 {
			return fmt.Errorf("%w: tensor %q: offset %d is not a multiple of the alignment %d", ErrFormat, t.Name, t.Offset, g.Alignment)
		}
		t.Size = -1 // unknown for types we cannot decode
		if v, b, ok := t.Type.blockInfo(); ok {
			if t.Dims[0]%uint64(v) != 0 {
				return fmt.Errorf("%w: tensor %q: rows of %d values do not fill %s blocks of %d", ErrFormat, t.Name, t.Dims[0], t.Type, v)
			}
			t.Size = int64(n / uint64(v) * uint64(b))
		}
		g.byName[t.Name] = len(g.Tensors)
		g.Tensors = append(g.Tensors, t)
	}
	if d.err != nil {
		return d.err
	}
	g.DataStart = pad(d.pos, int64(g.Alignment))
	return g.checkExtents(size)
}

// checkExtents checks every tensor's bytes against the data section
// [DataStart, size): the offset and the end lie inside it, compared in
// uint64 before anything becomes an int64 (an offset of 2^64 - DataStart
// would otherwise wrap round to the file's first byte), and no two tensors
// share a byte, which llama.cpp refuses too. A tensor of a type this
// package cannot size counts as one byte at its offset: any tensor holds at
// least that much, and its own end is left to whoever reads it.
func (g *File) checkExtents(size int64) error {
	var dataLen uint64
	if size > g.DataStart {
		dataLen = uint64(size - g.DataStart)
	}
	type extent struct {
		begin, end uint64
		name       string
	}
	ext := make([]extent, len(g.Tensors))
	for i, t := range g.Tensors {
		n := uint64(1)
		if t.Size >= 0 {
			n = uint64(t.Size)
		}
		if t.Offset > dataLen || n > dataLen-t.Offset {
			if t.Size < 0 {
				return fmt.Errorf("%w: tensor %q: offset %d lies outside the %d-byte data section", ErrFormat, t.Name, t.Offset, dataLen)
			}
			return fmt.Errorf("%w: tensor %q (%d bytes at offset %d) runs past the end of the %d-byte data section (the file has %d bytes)", ErrFormat, t.Name, t.Size, t.Offset, dataLen, size)
		}
		ext[i] = extent{t.Offset, t.Offset + n, t.Name}
	}
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.begin, b.begin) })
	for i := 1; i < len(ext); i++ {
		if p, e := ext[i-1], ext[i]; e.begin < p.end {
			return fmt.Errorf("%w: tensor %q at offset %d overlaps tensor %q, bytes [%d, %d) of the data section", ErrFormat, e.name, e.begin, p.name, p.begin, p.end)
		}
	}
	return nil
}

// Close releases the file.
func (g *File) Close() error { return g.f.Close() }

// Get returns a metadata value (see KV for the Go types).
func (g *File) Get(key string) (any, bool) {
	i, ok := g.byKey[key]
	if !ok {
		return nil, false
	}
	return g.Metadata[i].Value, true
}

// String returns a string value; ok is false when absent or not a string.
func (g *File) String(key string) (string, bool) {
	v, _ := g.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns an unsigned or non-negative integer value as uint64.
func (g *File) Uint(key string) (uint64, bool) {
	v, _ := g.Get(key)
	switch v := v.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// Float returns a float32 or float64 value.
func (g *File) Float(key string) (float64, bool) {
	v, _ := g.Get(key)
	switch v := v.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Tensor returns a tensor's description.
func (g *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := g.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return g.Tensors[i], true
}

// Raw reads a tensor's encoded bytes.
func (g *File) Raw(name string) ([]byte, error) {
	t, ok := g.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: %s: no tensor %q", g.Path, name)
	}
	if t.Size < 0 {
		return nil, fmt.Errorf("gguf: %s: tensor %q has type %s, which this package cannot read", g.Path, name, t.Type)
	}
	buf := make([]byte, t.Size)
	if _, err := g.f.ReadAt(buf, g.DataStart+int64(t.Offset)); err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", g.Path, name, err)
	}
	return buf, nil
}

// Float32 reads a tensor and dequantizes it to float32, row-major in
// Shape() order.
func (g *File) Float32(name string) ([]float32, error) {
	raw, err := g.Raw(name)
	if err != nil {
		return nil, err
	}
	t, _ := g.Tensor(name)
	out, err := Decode(t.Type, raw, t.NumElements())
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: %w", g.Path, name, err)
	}
	return out, nil
}

// decoder reads little-endian values, tracking the position and the first
// error; lengths are checked against the file size before allocating.
type decoder struct {
	r    io.Reader
	pos  int64
	size int64
	err  error
	buf  [8]byte
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if int64(n) > d.size-d.pos {
		d.err = fmt.Errorf("%w: %d bytes needed at offset %d, the file has %d", ErrFormat, n, d.pos, d.size)
		return nil
	}
	var b []byte
	if n <= len(d.buf) {
		b = d.buf[:n]
	} else {
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("%w: at offset %d: %v", ErrFormat, d.pos, err)
		return nil
	}
	d.pos += int64(n)
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str() string {
	n := d.u64()
	if d.err == nil && n > uint64(d.size-d.pos) {
		d.err = fmt.Errorf("%w: string of %d bytes at offset %d runs past the end of the file", ErrFormat, n, d.pos)
	}
	return string(d.bytes(int(n)))
}

// value reads one value of type t; depth limits nested arrays.
func (d *decoder) value(t ValueType, depth int) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeBool:
		b := d.u8()
		if d.err == nil && b > 1 {
			d.err = fmt.Errorf("%w: bool value %d", ErrFormat, b)
		}
		return b == 1
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeString:
		return d.str()
	case TypeArray:
		if depth > 4 {
			d.err = fmt.Errorf("%w: arrays nested deeper than 4", ErrFormat)
			return nil
		}
		et := ValueType(d.u32())
		n := d.u64()
		if d.err != nil {
			return nil
		}
		min := uint64(et.size())
		if min == 0 {
			min = 8 // a string or array takes at least its 8-byte length
		}
		if n > uint64(d.size-d.pos)/min {
			d.err = fmt.Errorf("%w: array of %d %s at offset %d runs past the end of the file", ErrFormat, n, et, d.pos)
			return nil
		}
		return readArray(d, et, int(n), depth)
	}
	if d.err == nil {
		d.err = fmt.Errorf("%w: unknown value type %d", ErrFormat, uint32(t))
	}
	return nil
}

func readArray(d *decoder, et ValueType, n, depth int) any {
	switch et {
	case TypeString:
		return collect[string](d, et, n, depth)
	case TypeUint8:
		return collect[uint8](d, et, n, depth)
	case TypeInt8:
		return collect[int8](d, et, n, depth)
	case TypeBool:
		return collect[bool](d, et, n, depth)
	case TypeUint16:
		return collect[uint16](d, et, n, depth)
	case TypeInt16:
		return collect[int16](d, et, n, depth)
	case TypeUint32:
		return collect[uint32](d, et, n, depth)
	case TypeInt32:
		return collect[int32](d, et, n, depth)
	case TypeFloat32:
		return collect[float32](d, et, n, depth)
	case TypeUint64:
		return collect[uint64](d, et, n, depth)
	case TypeInt64:
		return collect[int64](d, et, n, depth)
	case TypeFloat64:
		return collect[float64](d, et, n, depth)
	case TypeArray:
		return collect[any](d, et, n, depth)
	}
	d.err = fmt.Errorf("%w: array of unknown value type %d", ErrFormat, uint32(et))
	return nil
}

func collect[T any](d *decoder, et ValueType, n, depth int) []T {
	out := make([]T, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		v, _ := d.value(et, depth+1).(T)
		out = append(out, v)
	}
	return out
}
