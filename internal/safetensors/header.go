package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
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
	entries  map[string]entry
	names    []string // sorted
	metadata map[string]string
}

// corrupt builds an ErrCorrupt error naming the file.
func corrupt(file, format string, args ...any) error {
	return fmt.Errorf("safetensors %s: %s: %w", file, fmt.Sprintf(format, args...), ErrCorrupt)
}

// parseHeader validates b, the whole content of a safetensors file named
// file (used in errors only). It never allocates more than a small multiple
// of len(b), whatever the header claims.
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
	fields, err := splitObject(raw)
	if err != nil {
		return nil, corrupt(file, "header is not a JSON object: %v", err)
	}

	dataStart := 8 + int(n)
	bufLen := len(b) - dataStart
	h := &header{entries: make(map[string]entry, len(fields))}
	for _, f := range fields {
		if f.key == metadataKey {
			if h.metadata, err = parseMetadata(f.value); err != nil {
				return nil, corrupt(file, "%s: %v", metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(f.key, f.value, bufLen)
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", file, f.key, err)
		}
		e.begin += dataStart
		e.end += dataStart
		h.entries[f.key] = e
		h.names = append(h.names, f.key)
	}
	slices.Sort(h.names)
	if err := checkTiling(h, dataStart, len(b)); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", file, err)
	}
	return h, nil
}

// field is one key of the top-level header object with its raw value.
type field struct {
	key   string
	value json.RawMessage
}

// splitObject decodes a JSON object into its fields in order, rejecting
// duplicate keys (encoding/json would silently keep the last one) and any
// content after the object other than the space padding.
func splitObject(raw []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("got %v, want '{'", tok)
	}
	var fields []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("got %v, want a key", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value of %q: %v", key, err)
		}
		fields = append(fields, field{key, v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("after the object: %v", err)
		}
		return nil, fmt.Errorf("unexpected %v after the object", tok)
	}
	return fields, nil
}

// parseMetadata accepts an object of strings, or null (as the reference
// implementation does).
func parseMetadata(v json.RawMessage) (map[string]string, error) {
	if string(v) == "null" {
		return nil, nil
	}
	if len(v) == 0 || v[0] != '{' {
		return nil, fmt.Errorf("got %.40s, want an object of strings", v)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, raw := range m {
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, fmt.Errorf("key %q: got %.40s, want a string", k, raw)
		}
		out[k] = s
	}
	return out, nil
}

// parseEntry validates one tensor's description against a data buffer of
// bufLen bytes. Offsets in the result are relative to the buffer.
// The error wraps ErrCorrupt or ErrUnsupportedDType.
func parseEntry(name string, v json.RawMessage, bufLen int) (entry, error) {
	bad := func(format string, args ...any) (entry, error) {
		return entry{}, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if len(v) == 0 || v[0] != '{' {
		return bad("got %.40s, want an object with dtype, shape and data_offsets", v)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil {
		return bad("%v", err)
	}
	for k := range obj {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return bad("unknown field %q, want only dtype, shape and data_offsets", k)
		}
	}
	var ds string
	if rv, ok := obj["dtype"]; !ok || len(rv) == 0 || rv[0] != '"' || json.Unmarshal(rv, &ds) != nil {
		return bad("dtype is missing or not a string")
	}
	dt, err := ParseDType(ds)
	if err != nil {
		return entry{}, err
	}
	shape64, err := intArray(obj["shape"])
	if err != nil {
		return bad("shape: %v", err)
	}
	offs, err := intArray(obj["data_offsets"])
	if err != nil {
		return bad("data_offsets: %v", err)
	}
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
	if end > int64(bufLen) {
		return bad("data_offsets [%d, %d] run past the %d-byte data buffer (truncated?)", begin, end, bufLen)
	}
	// Multiply in uint64 with overflow checks: a header may claim a shape
	// whose element count does not fit any integer.
	want := uint64(dt.Size())
	shape := make([]int, len(shape64))
	for i, d := range shape64 {
		hi, lo := bits.Mul64(want, uint64(d))
		if hi != 0 {
			want = math.MaxUint64
		} else {
			want = lo
		}
		shape[i] = int(d)
	}
	if got := uint64(end - begin); got != want {
		wantS := strconv.FormatUint(want, 10)
		if want == math.MaxUint64 {
			wantS = "more than 2^64"
		}
		return bad("data_offsets [%d, %d] hold %d bytes, want %s (shape %v of %s, %d bytes each)",
			begin, end, got, wantS, shape64, dt, dt.Size())
	}
	return entry{name: name, dtype: dt, shape: shape, begin: int(begin), end: int(end)}, nil
}

// intArray decodes a JSON array of integers that fit in int64 (and in int,
// on 32-bit machines). Floats such as 2.0 are rejected: the format stores
// dimensions and offsets as unsigned integers.
func intArray(v json.RawMessage) ([]int64, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("missing")
	}
	if v[0] != '[' {
		return nil, fmt.Errorf("got %.40s, want an array of integers", v)
	}
	var nums []json.Number
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil {
		return nil, err
	}
	out := make([]int64, len(nums))
	for i, num := range nums {
		x, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("value %d is %s, want an integer", i, num)
		}
		if x > math.MaxInt {
			return nil, fmt.Errorf("value %d is %s, more than this machine's int holds", i, num)
		}
		out[i] = x
	}
	return out, nil
}

// checkTiling verifies that the tensors cover the data buffer
// [dataStart, fileLen) exactly once: sorted by offset, each starts where the
// previous one ended, and the last ends at the end of the file.
func checkTiling(h *header, dataStart, fileLen int) error {
	order := make([]entry, 0, len(h.entries))
	for _, e := range h.entries {
		order = append(order, e)
	}
	slices.SortFunc(order, func(a, b entry) int {
		if a.begin != b.begin {
			return a.begin - b.begin
		}
		if a.end != b.end {
			return a.end - b.end
		}
		return strings.Compare(a.name, b.name)
	})
	pos, prev := dataStart, ""
	for _, e := range order {
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
