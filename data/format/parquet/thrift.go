package parquet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file checks the thrift structures of a parquet file (its footer and
// every page header) before parquet-go decodes them. parquet-go's compact
// thrift decoder allocates each binary field's claimed length and each
// list's claimed count before it reads a byte of them, so 40 corrupt bytes
// could claim 2 GiB of statistics and kill the process with a fatal,
// unrecoverable "out of memory". walkStruct reads the same wire format and
// refuses any length or count that the bytes left cannot hold, and it
// estimates what decoding will allocate, so that the caller can bound it.

// Compact protocol wire types (thrift's compact protocol specification).
const (
	ctStop   = 0
	ctTrue   = 1
	ctFalse  = 2
	ctByte   = 3
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctDouble = 7
	ctBinary = 8
	ctList   = 9
	ctSet    = 10
	ctMap    = 11
	ctStruct = 12
	ctUUID   = 13
)

// Bytes parquet-go's decoder may allocate per decoded value, used to
// estimate a structure's decoded size. decodedStructBytes bounds the
// in-memory size of every struct in parquet-go's format package (checked by
// TestDecodedStructBytesBoundsParquetGo). Every struct on the wire is
// charged it, nested ones too although most live inside their parent (a
// union's member is allocated on its own), so the estimate is above the
// truth, never below it.
const (
	decodedStructBytes = 1024
	decodedScalarBytes = 8
	decodedBinaryBytes = 24 // slice header, plus the bytes themselves
	decodedMapEntry    = 64 // map bucket overhead per entry, beyond key and value
	maxThriftDepth     = 64 // parquet's metadata nests 6 deep
)

// errThriftTruncated: the structure runs past the bytes given, but may fit
// in the region they were read from. For a page header read in a window,
// the caller reads more and tries again.
var errThriftTruncated = errors.New("thrift structure runs past the bytes given")

// thriftWalker walks compact-protocol bytes without allocating from them.
type thriftWalker struct {
	b       []byte
	base    int64 // file offset of b[0], for messages
	region  int64 // bytes from b[0] to the end of the region b was read from
	pos     int
	decoded int64 // estimated bytes decoding allocates
	depth   int
}

// walkStruct checks the struct at the start of b, which is the start of
// the region bytes [base, base+region) of the file, and returns its length
// in bytes and the estimated bytes parquet-go allocates to decode it. A
// length or count the region cannot hold is an error; one the region holds
// but b does not is errThriftTruncated.
func walkStruct(b []byte, base, region int64) (n int, decoded int64, err error) {
	w := &thriftWalker{b: b, base: base, region: max(region, int64(len(b)))}
	if err := w.structBody(); err != nil {
		return 0, 0, err
	}
	return w.pos, w.decoded, nil
}

func (w *thriftWalker) left() int { return len(w.b) - w.pos }

// at is the file offset of b[pos].
func (w *thriftWalker) at(pos int) int64 { return w.base + int64(pos) }

func (w *thriftWalker) byte1() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, errThriftTruncated
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}

func (w *thriftWalker) skip(n int) error {
	if n > w.left() {
		return errThriftTruncated
	}
	w.pos += n
	return nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.pos:])
	switch {
	case n == 0:
		return 0, errThriftTruncated
	case n < 0:
		return 0, fmt.Errorf("a varint at byte %d overflows 64 bits", w.at(w.pos))
	}
	w.pos += n
	return v, nil
}

// length reads a binary length or a collection count and checks it against
// the bytes left: every element takes at least minBytes bytes on the wire.
func (w *thriftWalker) length(what string, minBytes int) (int, error) {
	at := w.pos
	v, err := w.uvarint()
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("a %s at byte %d claims %d, more than thrift allows", what, w.at(at), v)
	}
	if regionLeft := w.region - int64(w.pos); int64(v)*int64(minBytes) > regionLeft {
		return 0, fmt.Errorf("a %s at byte %d claims %d, more than the %d bytes left can hold", what, w.at(at), v, regionLeft)
	}
	if int64(v)*int64(minBytes) > int64(w.left()) {
		return 0, errThriftTruncated
	}
	return int(v), nil
}

func (w *thriftWalker) structBody() error {
	if w.depth++; w.depth > maxThriftDepth {
		return fmt.Errorf("thrift structures nest more than %d deep at byte %d", maxThriftDepth, w.at(w.pos))
	}
	defer func() { w.depth-- }()
	w.decoded += decodedStructBytes
	for {
		at := w.pos
		h, err := w.byte1()
		if err != nil {
			return err
		}
		if h == ctStop {
			return nil
		}
		if h>>4 == 0 { // the field id follows as a zigzag varint
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		t := h & 0x0f
		if t == ctTrue || t == ctFalse {
			continue // a bool field's value is its type
		}
		if t == ctStop {
			return fmt.Errorf("a field at byte %d has no type", w.at(at))
		}
		if err := w.value(t, false); err != nil {
			return err
		}
	}
}

// value walks one value of wire type t; inList says it is a collection
// element, where bools take a byte.
func (w *thriftWalker) value(t byte, inList bool) error {
	switch t {
	case ctTrue, ctFalse:
		if inList {
			return w.skip(1)
		}
		return nil
	case ctByte:
		return w.skip(1)
	case ctI16, ctI32, ctI64:
		_, err := w.uvarint()
		return err
	case ctDouble:
		return w.skip(8)
	case ctUUID:
		return w.skip(16)
	case ctBinary:
		n, err := w.length("binary length", 1)
		if err != nil {
			return err
		}
		w.decoded += int64(n)
		return w.skip(n)
	case ctList, ctSet:
		at := w.pos
		h, err := w.byte1()
		if err != nil {
			return err
		}
		et := h & 0x0f
		n := int(h >> 4)
		if n == 0x0f {
			if n, err = w.length("list count", 1); err != nil {
				return err
			}
		} else if n > w.left() {
			return errThriftTruncated
		}
		if n > 0 && (et == ctStop || et > ctUUID) {
			return fmt.Errorf("a list at byte %d has elements of unknown type %d", w.at(at), et)
		}
		w.decoded += int64(n) * elementBytes(et)
		for range n {
			if err := w.value(et, true); err != nil {
				return err
			}
		}
		return nil
	case ctMap:
		at := w.pos
		n, err := w.length("map count", 2)
		if err != nil || n == 0 {
			return err
		}
		h, err := w.byte1()
		if err != nil {
			return err
		}
		kt, vt := h>>4, h&0x0f
		if kt == ctStop || kt > ctUUID || vt == ctStop || vt > ctUUID {
			return fmt.Errorf("a map at byte %d has entries of unknown types %d and %d", w.at(at), kt, vt)
		}
		w.decoded += int64(n) * (elementBytes(kt) + elementBytes(vt) + decodedMapEntry)
		for range n {
			if err := w.value(kt, true); err != nil {
				return err
			}
			if err := w.value(vt, true); err != nil {
				return err
			}
		}
		return nil
	case ctStruct:
		return w.structBody()
	}
	return fmt.Errorf("a value at byte %d has unknown thrift type %d", w.at(w.pos), t)
}

// elementBytes is what decoding allocates per collection element of wire
// type t, beyond any binary bytes (counted where they are read).
func elementBytes(t byte) int64 {
	switch t {
	case ctStruct:
		return 0 // charged by structBody, element by element
	case ctBinary:
		return decodedBinaryBytes
	case ctList, ctSet, ctMap:
		return decodedBinaryBytes
	case ctUUID:
		return 16
	}
	return decodedScalarBytes
}
