package parquet

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"

	"github.com/ftune/ftune/data/format"
)

func TestCheckRuns(t *testing.T) {
	run := func(count uint64, packed bool, body ...byte) []byte {
		h := count << 1
		if packed {
			h |= 1
		}
		return append(binary.AppendUvarint(nil, h), body...)
	}
	for _, c := range []struct {
		name  string
		p     []byte
		width int
		n     int64
		want  string // "" passes
	}{
		{"exact RLE", append(run(60, false, 1), run(40, false, 0)...), 1, 100, ""},
		{"RLE past the page", run(1<<31-1, false, 1), 1, 100, "claim at least 2147483647 values in a page of 100"},
		{"bit-packed padding past n", run(32, true, make([]byte, 32)...), 1, 100, ""},
		{"bit-packed past the bytes", run(1<<28, true, 0, 0), 1, 100, "claim 2147483648 bit-packed values, more than the 2 bytes left hold"},
		{"zero-width bit-packed", run(1<<20, true), 0, 100, "zero-width values"},
		{"truncated header", []byte{0xff}, 1, 100, ""},
	} {
		err := checkRuns(c.p, c.width, c.n, "levels")
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestCheckDelta(t *testing.T) {
	var d delta.BinaryPackedEncoding
	lengths := make([]int32, 100)
	for i := range lengths {
		lengths[i] = int32(i % 7)
	}
	stream, err := d.EncodeInt32(nil, lengths)
	if err != nil {
		t.Fatal(err)
	}
	tail := append(append([]byte(nil), stream...), 0xaa, 0xbb)
	rest, err := checkDelta(tail, 100, "lengths")
	if err != nil || len(rest) != 2 || rest[0] != 0xaa {
		t.Errorf("100 values: rest % x, %v; want the two bytes after the stream", rest, err)
	}
	if _, err := checkDelta(stream, 99, "lengths"); err == nil || !strings.Contains(err.Error(), "claim 100 values in a page of 99") {
		t.Errorf("100 values in a page of 99: %v", err)
	}

	// DELTA_BYTE_ARRAY: 1000 values, each the whole of the one before
	// plus 1000 bytes, is 500 MB of strings from about 2 KB of page.
	prefix, suffix := make([]int32, 1000), make([]int32, 1000)
	for i := range prefix {
		prefix[i], suffix[i] = int32(i*1000), 1000
	}
	p, _ := d.EncodeInt32(nil, prefix)
	s, _ := d.EncodeInt32(nil, suffix)
	extra, err := checkValues(append(p, s...), pqformat.DeltaByteArray, 1000)
	if err != nil || extra != 500_500_000 {
		t.Errorf("prefix bomb: %d bytes of strings, %v; want 500500000", extra, err)
	}
}

func TestLeafLevels(t *testing.T) {
	opt, rep, req := pqformat.Optional, pqformat.Repeated, pqformat.Required
	el := func(name string, children int32, r pqformat.FieldRepetitionType) pqformat.SchemaElement {
		e := pqformat.SchemaElement{Name: name}
		if children > 0 {
			e.NumChildren.Valid, e.NumChildren.V = true, children
		} else {
			e.Type.Valid, e.Type.V = true, pqformat.ByteArray
		}
		e.RepetitionType.Valid, e.RepetitionType.V = true, r
		return e
	}
	// messages: optional list of repeated structs {role, content (optional)},
	// an empty group, then id.
	empty := pqformat.SchemaElement{Name: "empty", NumChildren: thriftNull(int32(0))}
	schema := []pqformat.SchemaElement{
		{Name: "root", NumChildren: thriftNull(int32(3))},
		el("messages", 1, opt), el("list", 1, rep), el("element", 2, opt), el("role", 0, req), el("content", 0, opt),
		empty, el("id", 0, req),
	}
	got, err := leafLevels(schema)
	want := []columnLevels{{1, 3}, {1, 4}, {0, 0}}
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	schema[3].NumChildren.V = 1 << 30
	if _, err := leafLevels(schema); err == nil || !strings.Contains(err.Error(), "claims 1073741824 children") {
		t.Errorf("a group claiming 2^30 children: %v", err)
	}
}

func thriftNull[T any](v T) (n thrift.Null[T]) {
	n.Valid, n.V = true, v
	return n
}

// TestParquetDictionaryIndexBomb: a real data page (arrow-rs, uncompressed,
// dictionary-encoded) whose first run of dictionary indices is rewritten
// to claim 2^31-1 values. parquet-go sizes its output by the run: 8 GiB
// before it reads a value (a fatal "out of memory", found by a byte sweep
// over testdata/writers, 2026-12-05).
func TestParquetDictionaryIndexBomb(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "writers", "arrowrs-uncompressed-v1.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	footerLen := int64(binary.LittleEndian.Uint32(data[len(data)-8:]))
	var md pqformat.FileMetaData
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, data[int64(len(data))-8-footerLen:len(data)-8], &md); err != nil {
		t.Fatal(err)
	}
	m := md.RowGroups[0].Columns[0].MetaData // instruction: optional, dictionary
	pos := m.DataPageOffset
	n, _, err := walkStruct(data[pos:], pos, int64(len(data))-pos)
	if err != nil {
		t.Fatal(err)
	}
	var h pqformat.PageHeader
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, data[pos:pos+int64(n)], &h); err != nil {
		t.Fatal(err)
	}
	if !h.DataPageHeader.Valid || h.DataPageHeader.V.Encoding != pqformat.RLEDictionary {
		t.Fatalf("unexpected first data page %+v", h)
	}
	content := pos + int64(n)
	defLen := int64(binary.LittleEndian.Uint32(data[content:]))
	runs := content + 4 + defLen + 1 // after the bit width
	copy(data[runs:], []byte{0xfe, 0xff, 0xff, 0xff, 0x0f})
	p := filepath.Join(t.TempDir(), "bomb.parquet")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = format.ReadAll(p, format.Options{})
	want := `column "instruction": the page at byte ` + strconv.FormatInt(pos, 10) + `: its dictionary indices claim at least 2147483647 values in a page of 100`
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %q", err, want)
	}
}
