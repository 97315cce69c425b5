package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxHeaderLen bounds the JSON header as the reference implementation does
// (100 MB), so a corrupt length cannot make us parse gigabytes of data as JSON.
const maxHeaderLen = 100_000_000

// maxTensors bounds the tensors of one file, far above any real one: a
// model's weights come in shards of a few gigabytes with 10^2 to 10^4
// tensors each, and even a whole mixture-of-experts giant stays under
// 10^5 in all its shards together (DeepSeek-V3's 58 MoE layers of 256
// experts, three matrices each with an FP8 scale beside it, make about
// 9·10^4). The bound is what keeps the worst header cheap: 100 MB of empty
// entries, over 10^6 of them, is refused while it is scanned, before any
// entry is decoded, and a header at the bound decodes in about a second
// into about twice its size (TestParseHeaderAtMaxTensors).
const maxTensors = 1 << 19

// maxMetadataBytes bounds the JSON of the __metadata__ object, which is
// decoded whole into a map. Writers put a format tag there, or a training
// tool's settings and dataset statistics: kilobytes, rarely megabytes. A
// bigger one is refused after it is scanned, before it is decoded.
const maxMetadataBytes = 16 << 20

// metadataKey is the reserved header key holding the string-to-string map.
const metadataKey = "__metadata__"

// entry is one validated tensor of a header: begin and end are absolute
// offsets into the whole file.
type entry struct {
	name       string
	dtype      DType
	shape      []int
	begin, end int
}

// header is a parsed and fully validated safetensors header.
type header struct {
	entries  map[string]*entry // into one slice of all the entries
	names    []string          // sorted
	metadata map[string]string
}

// corrupt builds an ErrCorrupt error naming the file.
func corrupt(file, format string, args ...any) error {
	return fmt.Errorf("safetensors %s: %s: %w", file, fmt.Sprintf(format, args...), ErrCorrupt)
}

// parseHeader validates b, the whole content of a safetensors file named
// file (used in errors only). It never allocates more than a small multiple
// of len(b), whatever the header claims. It reads the JSON twice: a first
// scan checks the syntax, counts the tensors and measures the metadata,
// refusing a header beyond maxTensors or maxMetadataBytes before decoding
// anything, and the second decodes the entries into memory sized by that
// count.
func parseHeader(file string, b []byte) (*header, error) {
	if len(b) < 8 {
		return nil, corrupt(file, "file is %d bytes, shorter than the 8-byte header length (truncated?)", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeaderLen {
		return nil, corrupt(file, "header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n > uint64(len(b)-8) {
		return nil, corrupt(file, "header length %d runs past the end of the %d-byte file (truncated?)", n, len(b))
	}
	if n < 2 {
		return nil, corrupt(file, "header length %d is too short for a JSON object", n)
	}
	raw := b[8 : 8+n]
	if raw[0] != '{' {
		return nil, corrupt(file, "header starts with %q, want '{'", raw[0])
	}
	if !utf8.Valid(raw) {
		return nil, corrupt(file, "header is not valid UTF-8")
	}
	count, err := scanHeader(file, raw)
	if err != nil {
		return nil, err
	}

	dataStart := 8 + int(n)
	p := entryParser{bufLen: len(b) - dataStart}
	list := make([]entry, 0, count) // never grows: h.entries points into it
	h := &header{entries: make(map[string]*entry, count), names: make([]string, 0, count)}
	s := &scanner{b: raw}
	err = s.object(func(q []byte, esc bool) error {
		if isMetadataKey(q, esc) {
			m, err := parseMetadata(s)
			if err != nil {
				return corrupt(file, "%s: %v", metadataKey, err)
			}
			h.metadata = m
			return nil
		}
		name := unquote(q, esc)
		if _, dup := h.entries[name]; dup {
			return corrupt(file, "duplicate key %q", name)
		}
		if len(list) == cap(list) {
			return corrupt(file, "more tensors than the first scan counted (%d)", count) // cannot happen
		}
		e, err := p.entry(s, name)
		if err != nil {
			return fmt.Errorf("safetensors %s: tensor %q: %w", file, name, err)
		}
		e.begin += dataStart
		e.end += dataStart
		list = append(list, e)
		h.entries[name] = &list[len(list)-1]
		h.names = append(h.names, name)
		return nil
	})
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) { // cannot happen: scanHeader has checked it
			return nil, corrupt(file, "header is not a JSON object: %v", err)
		}
		return nil, err
	}
	slices.Sort(h.names)
	if err := checkTiling(list, dataStart, len(b)); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", file, err)
	}
	return h, nil
}

// isMetadataKey reports whether a key from stringSpan is __metadata__.
func isMetadataKey(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted[1:len(quoted)-1]) == metadataKey
	}
	return unquote(quoted, true) == metadataKey
}

// scanHeader checks that raw is one JSON object followed by white space
// only, with at most one __metadata__ of at most maxMetadataBytes and at
// most maxTensors other keys, and returns their number. It allocates
// nothing for a header without escapes, and stops at the first key past
// the bound.
func scanHeader(file string, raw []byte) (tensors int, err error) {
	s := &scanner{b: raw}
	sawMetadata := false
	err = s.object(func(q []byte, esc bool) error {
		if !isMetadataKey(q, esc) {
			if tensors++; tensors > maxTensors {
				return corrupt(file, "header lists more than %d tensors, the most one file may hold (refused at header byte %d of %d)", maxTensors, s.i, len(raw))
			}
			_, err := s.skipValue(1)
			return err
		}
		if sawMetadata {
			return corrupt(file, "duplicate key %q", metadataKey)
		}
		sawMetadata = true
		v, err := s.skipValue(1)
		if err == nil && len(v) > maxMetadataBytes {
			return corrupt(file, "%s is %d bytes of JSON, more than the %d-byte limit", metadataKey, len(v), maxMetadataBytes)
		}
		return err
	})
	if err == nil {
		if s.peek(); s.i < len(raw) {
			err = s.unexpected("nothing after the object")
		}
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return 0, corrupt(file, "header is not a JSON object: %v", err)
	}
	return tensors, err
}

// parseMetadata accepts an object of strings, or null (as the reference
// implementation does). A key given twice keeps its last value, as
// encoding/json did.
func parseMetadata(s *scanner) (map[string]string, error) {
	if s.peek() != '{' {
		v, err := s.skipValue(1)
		if err != nil {
			return nil, err
		}
		if string(v) == "null" {
			return nil, nil
		}
		return nil, fmt.Errorf("got %.40s, want an object of strings", v)
	}
	out := map[string]string{}
	err := s.object(func(q []byte, esc bool) error {
		k := unquote(q, esc)
		if s.peek() != '"' {
			v, err := s.skipValue(2)
			if err != nil {
				return err
			}
			return fmt.Errorf("key %q: got %.40s, want a string", k, v)
		}
		v, err := s.str()
		out[k] = v
		return err
	})
	return out, err
}

// entryParser decodes tensor entries, cutting their shapes from one
// shared slab instead of allocating each.
type entryParser struct {
	bufLen     int     // bytes of the data buffer
	shape, off []int64 // scratch
	slab       []int
}

// entry decodes and validates the tensor description at s against the
// data buffer. Offsets in the result are relative to the buffer. The error
// wraps ErrCorrupt or ErrUnsupportedDType.
func (p *entryParser) entry(s *scanner, name string) (entry, error) {
	bad := func(format string, args ...any) (entry, error) {
		return entry{}, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if s.peek() != '{' {
		v, err := s.skipValue(1)
		if err != nil {
			return bad("%v", err)
		}
		return bad("got %.40s, want an object with dtype, shape and data_offsets", v)
	}
	var dtypeV, shapeV, offsV []byte
	err := s.object(func(q []byte, esc bool) error {
		v, err := s.skipValue(2)
		if err != nil {
			return err
		}
		k := q[1 : len(q)-1]
		if esc {
			k = []byte(unquote(q, esc))
		}
		var slot *[]byte
		switch string(k) { // no allocation: the compiler compares in place
		case "dtype":
			slot = &dtypeV
		case "shape":
			slot = &shapeV
		case "data_offsets":
			slot = &offsV
		default:
			_, err := bad("unknown field %q, want only dtype, shape and data_offsets", string(k))
			return err
		}
		if *slot != nil {
			_, err := bad("field %q appears twice", string(k))
			return err
		}
		*slot = v
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return entry{}, err
		}
		return bad("%v", err)
	}
	if len(dtypeV) == 0 || dtypeV[0] != '"' {
		return bad("dtype is missing or not a string")
	}
	dt, err := ParseDType(unquote(dtypeV, bytes.IndexByte(dtypeV, '\\') >= 0))
	if err != nil {
		return entry{}, err
	}
	if p.shape, err = intArray(p.shape[:0], shapeV); err != nil {
		return bad("shape: %v", err)
	}
	if p.off, err = intArray(p.off[:0], offsV); err != nil {
		return bad("data_offsets: %v", err)
	}
	shape64, offs := p.shape, p.off
	if len(offs) != 2 {
		return bad("data_offsets has %d values, want [begin, end]", len(offs))
	}
	begin, end := offs[0], offs[1]
	for i, d := range shape64 {
		if d < 0 {
			return bad("shape %v: dimension %d is %d, want >= 0", shape64, i, d)
		}
	}
	if begin < 0 || end < begin {
		return bad("data_offsets [%d, %d]: want 0 <= begin <= end", begin, end)
	}
	if end > int64(p.bufLen) {
		return bad("data_offsets [%d, %d] run past the %d-byte data buffer (truncated?)", begin, end, p.bufLen)
	}
	// Multiply in uint64 with overflow checks: a header may claim a shape
	// whose element count does not fit any integer.
	want := uint64(dt.Size())
	for _, d := range shape64 {
		hi, lo := bits.Mul64(want, uint64(d))
		if hi != 0 {
			want = math.MaxUint64
		} else {
			want = lo
		}
	}
	if got := uint64(end - begin); got != want {
		wantS := strconv.FormatUint(want, 10)
		if want == math.MaxUint64 {
			wantS = "more than 2^64"
		}
		return bad("data_offsets [%d, %d] hold %d bytes, want %s (shape %v of %s, %d bytes each)",
			begin, end, got, wantS, shape64, dt, dt.Size())
	}
	if cap(p.slab)-len(p.slab) < len(shape64) {
		p.slab = make([]int, 0, max(len(shape64), 4096))
	}
	n := len(p.slab)
	p.slab = p.slab[:n+len(shape64)]
	shape := p.slab[n : n+len(shape64) : n+len(shape64)] // capped: an append cannot reach the next shape
	for i, d := range shape64 {
		shape[i] = int(d)
	}
	return entry{name: name, dtype: dt, shape: shape, begin: int(begin), end: int(end)}, nil
}

// intArray appends to dst the JSON array of integers v (a value's text, nil
// when absent); the integers must fit in int64 (and in int, on 32-bit
// machines). Floats such as 2.0, and numbers in strings, are rejected: the
// format stores dimensions and offsets as unsigned integers.
func intArray(dst []int64, v []byte) ([]int64, error) {
	if len(v) == 0 {
		return dst, fmt.Errorf("missing")
	}
	if v[0] != '[' {
		return dst, fmt.Errorf("got %.40s, want an array of integers", v)
	}
	s := &scanner{b: v, i: 1}
	if s.peek() == ']' {
		return dst, nil
	}
	for i := 0; ; i++ {
		if c := s.peek(); c != '-' && (c < '0' || c > '9') {
			num, err := s.skipValue(1)
			if err != nil {
				return dst, err
			}
			return dst, fmt.Errorf("value %d is %.40s, want an integer", i, num)
		}
		num, isInt, err := s.number()
		if err != nil {
			return dst, err
		}
		x, err := strconv.ParseInt(string(num), 10, 64)
		if !isInt || err != nil {
			return dst, fmt.Errorf("value %d is %s, want an integer", i, num)
		}
		if x > math.MaxInt {
			return dst, fmt.Errorf("value %d is %s, more than this machine's int holds", i, num)
		}
		dst = append(dst, x)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return dst, nil
		default:
			return dst, s.unexpected("',' or ']'")
		}
	}
}

// checkTiling verifies that the tensors cover the data buffer
// [dataStart, fileLen) exactly once: sorted by offset, each starts where the
// previous one ended, and the last ends at the end of the file. It sorts
// 4-byte indices rather than the entries; files list their tensors in
// offset order as a rule, which the sort finds in linear time.
func checkTiling(list []entry, dataStart, fileLen int) error {
	order := make([]int32, len(list))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &list[i], &list[j]
		if a.begin != b.begin {
			return a.begin - b.begin
		}
		if a.end != b.end {
			return a.end - b.end
		}
		return strings.Compare(a.name, b.name)
	})
	pos, prev := dataStart, ""
	for _, i := range order {
		e := &list[i]
		if e.begin < pos {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d: %w",
				e.name, e.begin-dataStart, e.end-dataStart, prev, pos-dataStart, ErrCorrupt)
		}
		if e.begin > pos {
			return fmt.Errorf("data buffer bytes [%d, %d) belong to no tensor (next is %q): %w",
				pos-dataStart, e.begin-dataStart, e.name, ErrCorrupt)
		}
		pos, prev = e.end, e.name
	}
	if pos != fileLen {
		return fmt.Errorf("tensors cover %d bytes of the %d-byte data buffer; the rest belongs to no tensor: %w",
			pos-dataStart, fileLen-dataStart, ErrCorrupt)
	}
	return nil
}
