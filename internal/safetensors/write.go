package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ftune/ftune/internal/fsutil"
)

// Write stores tensors in a new safetensors file at path, atomically (a
// temporary file in the same folder, fsync, rename): a reader sees the old
// file or the complete new one. The layout is the reference implementation's,
// so the bytes equal what Python's safetensors writes for the same tensors:
// data ordered by dtype (widest first, see layoutRank) then by name, the
// header listing "__metadata__" first (when metadata is non-nil) and then the
// tensors in data order, padded with spaces to a multiple of 8 bytes. Every
// tensor therefore starts at a multiple of its element size, and a mapping
// can be viewed as []float32 etc. without copying. For files of one dtype the
// header is sorted by name. Inconsistent tensors give an error wrapping
// ErrInvalid (or ErrUnsupportedDType) and nothing is written. Tensors with
// Fill are produced one at a time as the data is written.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	if len(tensors) > maxTensors { // a file that Open would refuse
		return fmt.Errorf("safetensors write %s: %d tensors, more than the %d one file may hold: %w", path, len(tensors), maxTensors, ErrInvalid)
	}
	if err := validate(path, tensors, metadata); err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		return encode(w, tensors, metadata)
	})
}

// validate checks what Write needs before any byte is written.
func validate(path string, tensors []Tensor, metadata map[string]string) error {
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("safetensors write %s: tensor %q: %s: %w", path, name, fmt.Sprintf(format, args...), ErrInvalid)
	}
	// JSON cannot carry invalid UTF-8 (encoders replace it), so such a name
	// would not read back as written.
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("safetensors write %s: metadata %q: not valid UTF-8: %w", path, k, ErrInvalid)
		}
	}
	if metadata != nil {
		var b bytes.Buffer
		writeMetadata(&b, metadata)
		if b.Len() > maxMetadataBytes { // a file that Open would refuse
			return fmt.Errorf("safetensors write %s: metadata is %d bytes of JSON, more than the %d-byte limit: %w", path, b.Len(), maxMetadataBytes, ErrInvalid)
		}
	}
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if t.Name == metadataKey {
			return bad(t.Name, "the name is reserved for the metadata map")
		}
		if !utf8.ValidString(t.Name) {
			return bad(t.Name, "the name is not valid UTF-8")
		}
		if seen[t.Name] {
			return bad(t.Name, "duplicate name")
		}
		seen[t.Name] = true
		if !t.DType.Valid() {
			return fmt.Errorf("safetensors write %s: tensor %q: dtype %q: %w", path, t.Name, t.DType, ErrUnsupportedDType)
		}
		want := uint64(t.DType.Size())
		for i, d := range t.Shape {
			if d < 0 {
				return bad(t.Name, "shape %v: dimension %d is %d, want >= 0", t.Shape, i, d)
			}
			hi, lo := bits.Mul64(want, uint64(d))
			if hi != 0 || lo > math.MaxInt {
				return bad(t.Name, "shape %v of %s overflows", t.Shape, t.DType)
			}
			want = lo
		}
		if t.Fill != nil {
			if t.Data != nil {
				return bad(t.Name, "both Data and Fill are set")
			}
			continue // its size is checked when it is filled
		}
		if uint64(len(t.Data)) != want {
			return bad(t.Name, "data has %d bytes, want %d (shape %v of %s, %d bytes each)",
				len(t.Data), want, t.Shape, t.DType, t.DType.Size())
		}
	}
	return nil
}

// layoutRank orders dtypes as the reference implementation's Dtype enum
// does ("in increasing alignment order"); data is laid out highest rank
// first. Matching it exactly, not just by size, keeps mixed-dtype files
// byte-identical to Python's.
func layoutRank(d DType) int {
	switch d {
	case BOOL:
		return 0
	case U8:
		return 1
	case I8:
		return 2
	case F8E5M2:
		return 3
	case F8E4M3:
		return 4
	case I16:
		return 5
	case U16:
		return 6
	case F16:
		return 7
	case BF16:
		return 8
	case I32:
		return 9
	case U32:
		return 10
	case F32:
		return 11
	case F64:
		return 12
	case I64:
		return 13
	case U64:
		return 14
	}
	return -1
}

// encode writes the file content. The tensors must have passed validate.
func encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	layout := slices.Clone(tensors)
	slices.SortFunc(layout, func(a, b Tensor) int {
		if c := cmp.Compare(layoutRank(b.DType), layoutRank(a.DType)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})

	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if metadata != nil {
		writeJSONString(&hdr, metadataKey)
		hdr.WriteByte(':')
		writeMetadata(&hdr, metadata)
	}
	pos := 0
	for i, t := range layout {
		if i > 0 || metadata != nil {
			hdr.WriteByte(',')
		}
		writeJSONString(&hdr, t.Name)
		hdr.WriteString(`:{"dtype":`)
		writeJSONString(&hdr, string(t.DType))
		hdr.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, pos, pos+t.byteSize())
		pos += t.byteSize()
	}
	hdr.WriteByte('}')
	// Pad with spaces so the data buffer starts 8-byte aligned.
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}

	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	for _, t := range layout {
		data := t.Data
		if t.Fill != nil {
			var err error
			if data, err = t.Fill(); err != nil {
				return err
			}
			if len(data) != t.byteSize() {
				return fmt.Errorf("safetensors write: tensor %q: Fill gave %d bytes, want %d (shape %v of %s): %w", t.Name, len(data), t.byteSize(), t.Shape, t.DType, ErrInvalid)
			}
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// writeMetadata writes the __metadata__ object, keys sorted.
func writeMetadata(b *bytes.Buffer, metadata map[string]string) {
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(metadata)) {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, k)
		b.WriteByte(':')
		writeJSONString(b, metadata[k])
	}
	b.WriteByte('}')
}

// writeJSONString writes s as a JSON string without Go's HTML escaping of
// <, > and &, so names read back byte-identical in any JSON parser.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}
