package parquet_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/format/parquet"
)

// encodeParquetWith is encodeParquet with writer options (codec, page
// version).
func encodeParquetWith[T any](rows []T, opts ...pq.WriterOption) ([]byte, error) {
	var b bytes.Buffer
	w := pq.NewGenericWriter[T](&b, opts...)
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeBytes(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "d.parquet")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func alpacaRows(n int) []pqAlpaca {
	rows := make([]pqAlpaca, n)
	for i := range rows {
		rows[i] = pqAlpaca{Instruction: fmt.Sprint("question ", i), Output: fmt.Sprint("answer ", i%7)}
	}
	return rows
}

var codecs = []compress.Codec{&pq.Uncompressed, &pq.Snappy, &pq.Gzip, &pq.Brotli, &pq.Zstd, &pq.Lz4Raw}

// TestParquetCodecsRead: the checks before parquet-go reads a file refuse
// no file parquet-go itself writes, with each codec and page version.
func TestParquetCodecsRead(t *testing.T) {
	for _, codec := range codecs {
		for _, version := range []int{1, 2} {
			data, err := encodeParquetWith(alpacaRows(3000), pq.Compression(codec), pq.DataPageVersion(version), pq.PageBufferSize(4096))
			if err != nil {
				t.Fatal(err)
			}
			exs, _, err := format.ReadAll(writeBytes(t, data), format.Options{})
			if err != nil || len(exs) != 3000 || exs[2999].Messages[1].Content != "answer 3" {
				t.Errorf("%s v%d: %d examples, %v", codec, version, len(exs), err)
			}
		}
	}
}

// TestParquetPageHeaderBomb: the kind of file CI's fuzzer found
// (2026-12-05). A page header's statistics claim a 2 GiB binary value in a
// 675-byte file; parquet-go allocates it before reading. Alone, this test
// then sees 2048 MB allocated; in a fuzz worker that already held memory,
// under the tests' address space limit, the process died with a fatal
// "out of memory" that no recover catches.
// testdata/page-header-bomb.parquet is the seed file of FuzzParquet
// (parquet-go v0.32.0's encoding) with bytes 38-42 set to the varint
// 2^31-1.
func TestParquetPageHeaderBomb(t *testing.T) {
	p := filepath.Join("testdata", "page-header-bomb.parquet")
	var err error
	n := allocated(func() { _, _, err = format.ReadAll(p, format.Options{}) })
	want := `row group 1, column "messages.list.element.role": the page header at byte 4: a binary length at byte 38 claims 2147483647, more than the 72 bytes left can hold`
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant an ErrMalformed containing %q", err, want)
	}
	if n > maxAlloc {
		t.Errorf("allocated %d MB", n>>20)
	}
}

// firstPageHeader returns the offset of the first page of the file's first
// column.
func firstPageHeader(t *testing.T, data []byte) int64 {
	t.Helper()
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata().RowGroups[0].Columns[0].MetaData
	if m.DictionaryPageOffset != 0 {
		return m.DictionaryPageOffset
	}
	return m.DataPageOffset
}

// TestParquetInflateBomb: a compressed page that inflates past the size its
// header claims is refused before parquet-go inflates it (parquet-go grows
// its buffer to whatever the data inflates to, and for LZ4_RAW doubles it
// forever when the block does not fit). The claim is rewritten in place
// with a smaller varint of the same length.
func TestParquetInflateBomb(t *testing.T) {
	for _, codec := range []compress.Codec{&pq.Snappy, &pq.Gzip, &pq.Brotli, &pq.Zstd, &pq.Lz4Raw} {
		data, err := encodeParquetWith(alpacaRows(200), pq.Compression(codec))
		if err != nil {
			t.Fatal(err)
		}
		at := firstPageHeader(t, data)
		// PageHeader: field 1 (type, i32), then field 2 (uncompressed_page_size).
		if data[at] != 0x15 || data[at+2] != 0x15 {
			t.Fatalf("%s: unexpected page header % x", codec, data[at:at+8])
		}
		v, n := binary.Varint(data[at+3:])
		if n != 2 || v < 128 {
			t.Fatalf("%s: uncompressed size %d in %d bytes; the test needs a two-byte varint", codec, v, n)
		}
		binary.PutVarint(data[at+3:at+3+int64(n)], 64) // zigzag 128: two bytes
		_, _, err = format.ReadAll(writeBytes(t, data), format.Options{})
		if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "64 bytes its header claims") {
			t.Errorf("%s (%d bytes claimed as 64): got %v", codec, v, err)
		}
	}
}

// pqSparse's first column is all nulls.
type pqSparse struct {
	Note        *string `parquet:"note,optional"`
	Instruction string  `parquet:"instruction"`
	Output      string  `parquet:"output"`
}

// TestParquetMemoryBudget: pages, row groups and footers that decode to
// more than the budget are refused with the figures, before parquet-go
// allocates them. A page of nulls is the case sizes alone miss: its
// definition levels compress to a few bytes whatever the count.
func TestParquetMemoryBudget(t *testing.T) {
	defer parquet.SetMemoryBudget(parquet.SetMemoryBudget(1 << 20))
	rows := make([]pqSparse, 100_000)
	for i := range rows {
		rows[i] = pqSparse{Instruction: "q", Output: "a"}
	}
	data, err := encodeParquetWith(rows, pq.PageBufferSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = format.ReadAll(writeBytes(t, data), format.Options{})
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), `column "note": the page at byte 4 (`) ||
		!strings.Contains(err.Error(), "100000 values) needs about 1.5 MiB to decode, more than the 1.0 MiB") {
		t.Errorf("a page of 100,000 nulls under a 1 MiB budget: got %v", err)
	}

	// Three columns each under the budget, together over it.
	rows = rows[:25_000]
	data, err = encodeParquetWith(rows, pq.PageBufferSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = format.ReadAll(writeBytes(t, data), format.Options{})
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "row group 1 holds about 1.3 MiB at once") {
		t.Errorf("three pages of 25,000 values under a 1 MiB budget: got %v", err)
	}
	parquet.SetMemoryBudget(16 << 20)
	if exs, _, err := format.ReadAll(writeBytes(t, data), format.Options{}); err != nil || len(exs) != 25_000 {
		t.Errorf("the same file under 16 MiB: %d examples, %v", len(exs), err)
	}

	parquet.SetMemoryBudget(2 << 10)
	_, _, err = format.ReadAll(writeBytes(t, data), format.Options{})
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "its footer decodes to about") || !strings.Contains(err.Error(), "more than the 2048 bytes") {
		t.Errorf("a footer under a 2 KiB budget: got %v", err)
	}
	parquet.SetMemoryBudget(64)
	_, _, err = format.ReadAll(writeBytes(t, data), format.Options{})
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "its footer is") || !strings.Contains(err.Error(), "more than the 64 bytes") {
		t.Errorf("a footer under a 64-byte budget: got %v", err)
	}
}

// TestParquetFooterListBomb: the footer's schema list rewritten to claim
// 2^31-1 elements. parquet-go makes the list before decoding an element:
// 2^31-1 schema elements of 96 bytes, 192 GiB, a fatal "out of memory" on
// any machine (checked by hand without the address space limit,
// 2026-12-05). The walker refuses the count against the footer's bytes.
func TestParquetFooterListBomb(t *testing.T) {
	seed, err := encodeParquet([]pqChat{{Messages: []pqMessage{{"user", "hi"}, {"assistant", "hello"}}}})
	if err != nil {
		t.Fatal(err)
	}
	footerLen := int(binary.LittleEndian.Uint32(seed[len(seed)-8:]))
	start := len(seed) - 8 - footerLen
	// FileMetaData: field 1 (version, i32), then field 2 (schema, a list of
	// structs) with its list header.
	at := start + 2
	if seed[start] != 0x15 || seed[at] != 0x19 || seed[at+1]&0x0f != 0x0c {
		t.Fatalf("unexpected footer % x", seed[start:start+8])
	}
	data := append([]byte(nil), seed[:at+1]...)
	data = append(data, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07) // long form: 2^31-1 structs
	data = append(data, seed[at+2:len(seed)-8]...)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(data)-start))
	data = append(data, "PAR1"...)
	n := allocated(func() { _, _, err = format.ReadAll(writeBytes(t, data), format.Options{}) })
	want := "its footer: a list count at byte " + fmt.Sprint(at+2) + " claims 2147483647, more than the"
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant an ErrMalformed containing %q", err, want)
	}
	if n > maxAlloc {
		t.Errorf("allocated %d MB", n>>20)
	}
}

// TestOtherWritersFiles: files DuckDB 1.5.6 and arrow-rs (parquet-wasm
// 0.8.0) write, with every codec each offers and both page versions, pass
// the checks and read back to the rows they were written from
// (testdata/writers: gen-writers.mjs made them, and rows.json holds the
// rows). arrow-rs's LZ4_RAW v1 file read as garbage levels with
// parquet-go v0.32.0, whose LZ4 decoder inflated pages compressed less
// than 3x into a new buffer that was then dropped; v0.32.1 fixed it.
func TestOtherWritersFiles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "writers", "rows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Instruction string
		Input       *string
		Output      string
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "writers", "*.parquet"))
	if len(files) != 19 {
		t.Fatalf("%d files, want 19", len(files))
	}
	for _, p := range files {
		exs, _, err := format.ReadAll(p, format.Options{})
		if err != nil || len(exs) != len(rows) {
			t.Errorf("%s: %d examples, %v", p, len(exs), err)
			continue
		}
		for i, r := range rows {
			user := r.Instruction
			if r.Input != nil && !strings.HasSuffix(p, "messages.parquet") {
				user += "\n\n" + *r.Input
			}
			want := chat("user", user, "assistant", r.Output)
			if got := exs[i].Messages; !reflect.DeepEqual(got, want) {
				t.Errorf("%s row %d: got %+v, want %+v", p, i+1, got, want)
				break
			}
		}
	}
}
