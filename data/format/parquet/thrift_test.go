package parquet

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/pierrec/lz4/v4"
)

// TestWalkStructMatchesParquetGo: on headers parquet-go encodes, the walker
// ends where the struct ends, and its decoded estimate is at least the
// struct's own size.
func TestWalkStructMatchesParquetGo(t *testing.T) {
	var h pqformat.PageHeader
	h.Type = pqformat.DataPageV2
	h.UncompressedPageSize, h.CompressedPageSize = 1000, 400
	h.DataPageHeaderV2.Valid = true
	h.DataPageHeaderV2.V.NumValues = 12
	h.DataPageHeaderV2.V.IsCompressed.Valid = true
	h.DataPageHeaderV2.V.Statistics.MinValue = []byte("alpha")
	h.DataPageHeaderV2.V.Statistics.MaxValue = []byte(strings.Repeat("z", 300))
	b, err := thrift.Marshal(&thrift.CompactProtocol{}, &h)
	if err != nil {
		t.Fatal(err)
	}
	trailing := append(append([]byte(nil), b...), 0xde, 0xad)
	n, decoded, err := walkStruct(trailing, 100, int64(len(trailing)))
	if err != nil || n != len(b) {
		t.Fatalf("walked %d of %d bytes: %v", n, len(b), err)
	}
	if decoded < int64(reflect.TypeOf(h).Size())+305 {
		t.Errorf("estimated %d decoded bytes, below the header's own %d plus its 305 bytes of statistics", decoded, reflect.TypeOf(h).Size())
	}
	// Cut short of a region that holds it, the header is truncated (the
	// caller reads more); cut at the end of the region, it is refused.
	for cut := range len(b) {
		if _, _, err := walkStruct(b[:cut], 0, int64(len(b))); !errors.Is(err, errThriftTruncated) {
			t.Fatalf("cut at %d of %d: %v, want truncated", cut, len(b), err)
		}
		if _, _, err := walkStruct(b[:cut], 0, int64(cut)); err == nil {
			t.Fatalf("cut at %d of %d: passed", cut, len(b))
		}
	}
}

func TestWalkStructRefusals(t *testing.T) {
	nested := append(bytes.Repeat([]byte{0x1c}, maxThriftDepth+1), bytes.Repeat([]byte{0}, maxThriftDepth+2)...)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		// field 1, binary, length 2^31-1 as a varint
		{"binary past the end", []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0x07, 'x', 0}, "a binary length at byte 11 claims 2147483647, more than the 2 bytes left can hold"},
		{"binary over int32", []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, "claims 4294967295, more than thrift allows"},
		// field 1, list of structs, long-form count 1,000,000
		{"list count past the end", []byte{0x19, 0xfc, 0xc0, 0x84, 0x3d, 0, 0, 0}, "a list count at byte 12 claims 1000000, more than the 3 bytes left can hold"},
		// field 1, map of 100 entries in 3 bytes
		{"map count past the end", []byte{0x1b, 100, 0x55, 0, 0, 0}, "a map count at byte 11 claims 100, more than the 4 bytes left can hold"},
		{"unknown list element type", []byte{0x19, 0x1e, 0, 0}, "a list at byte 11 has elements of unknown type 14"},
		{"unknown field type", []byte{0x1e, 0}, "a value at byte 11 has unknown thrift type 14"},
		{"typeless field", []byte{0x10, 0}, "a field at byte 10 has no type"},
		{"varint overflow", []byte{0x15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, "a varint at byte 11 overflows 64 bits"},
		{"deep nesting", nested, "thrift structures nest more than 64 deep"},
	} {
		_, _, err := walkStruct(c.b, 10, int64(len(c.b)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// A list of 1000 empty structs is 1000 bytes and decodes to 1000 structs.
	b := append([]byte{0x19, 0xfc, 0xe8, 0x07}, bytes.Repeat([]byte{0}, 1001)...)
	n, decoded, err := walkStruct(b, 0, int64(len(b)))
	if err != nil || n != len(b) || decoded != 1001*decodedStructBytes {
		t.Errorf("1000 empty structs: %d bytes, %d decoded, %v", n, decoded, err)
	}
}

// TestDecodedStructBytesBoundsParquetGo: every struct parquet-go decodes a
// footer or page header into fits in decodedStructBytes, so the walker's
// estimate is an upper bound for this version of parquet-go.
func TestDecodedStructBytesBoundsParquetGo(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var visit func(reflect.Type)
	visit = func(ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			visit(ty.Elem())
		case reflect.Struct:
			if seen[ty] {
				return
			}
			seen[ty] = true
			if ty.Size() > decodedStructBytes {
				t.Errorf("%s is %d bytes, more than decodedStructBytes (%d)", ty, ty.Size(), decodedStructBytes)
			}
			for i := range ty.NumField() {
				visit(ty.Field(i).Type)
			}
		}
	}
	visit(reflect.TypeFor[pqformat.FileMetaData]())
	visit(reflect.TypeFor[pqformat.PageHeader]())
	if len(seen) < 20 {
		t.Errorf("visited only %d struct types", len(seen))
	}
}

// TestInflaterBounds: each codec's inflate gives back data that inflates
// within the claim, and refuses data that inflates past it or not at all.
func TestInflaterBounds(t *testing.T) {
	plain := bytes.Repeat([]byte("a page of text "), 1<<16) // 960 KiB
	var gz, br bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	bw := brotli.NewWriter(&br)
	bw.Write(plain)
	bw.Close()
	enc, _ := zstd.NewWriter(nil)
	lz := make([]byte, lz4.CompressBlockBound(len(plain)))
	nlz, err := lz4.CompressBlock(plain, lz, nil)
	if err != nil || nlz == 0 {
		t.Fatal(nlz, err)
	}
	compressed := map[pqformat.CompressionCodec][]byte{
		pqformat.Snappy: snappy.Encode(nil, plain),
		pqformat.Gzip:   gz.Bytes(),
		pqformat.Brotli: br.Bytes(),
		pqformat.Zstd:   enc.EncodeAll(plain, nil),
		pqformat.Lz4Raw: lz[:nlz],
	}
	var z inflater
	defer z.close()
	for codec, src := range compressed {
		if out, err := z.inflate(codec, src, int64(len(plain))); err != nil || !bytes.Equal(out, plain) {
			t.Errorf("%s within its claim: %d bytes, %v", codec, len(out), err)
		}
		if _, err := z.inflate(codec, src, 1000); err == nil {
			t.Errorf("%s: %d bytes inflating to %d passed a claim of 1000", codec, len(src), len(plain))
		}
		if _, err := z.inflate(codec, src[:len(src)/2], int64(len(plain))); err == nil {
			t.Errorf("%s: half the compressed bytes passed", codec)
		}
	}
	// Zstd pages larger than the shared decoder's limit get one of their own.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	if out, err := z.inflate(pqformat.Zstd, enc.EncodeAll(big, nil), int64(len(big))); err != nil || !bytes.Equal(out, big) {
		t.Errorf("16 MiB zstd page: %d bytes, %v", len(out), err)
	}
}
