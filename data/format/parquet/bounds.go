package parquet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/pierrec/lz4/v4"

	"github.com/ftune/ftune/data/format"
)

// A parquet file is untrusted input, and parquet-go trusts what its
// metadata and encoded data claim: a length in a page header, a list count
// in the footer, the size a compressed page inflates to, the count of a run
// of levels or dictionary indices. A claim beyond the memory the process
// can get is not an error it returns but a fatal "out of memory" that no
// recover catches (and for a corrupt LZ4_RAW page, an endless loop of
// doubling buffers). So before parquet-go reads a file, checkFile walks its
// footer and every page header with the bounded walker in thrift.go, checks
// every page's claimed sizes against its column chunk, inflates every
// compressed page once under the size its header claims, checks the counts
// inside each page (pages.go), and adds up what reading a row group holds
// at once. A file that fails is refused with what it claimed and where;
// one that passes is read by parquet-go within memoryBudget (and, for its
// decoding arrays, a small factor of it: FuzzParquet measures it).
//
// The price: every page is read, and inflated, twice. On 50,000 alpaca
// rows (BenchmarkParquet, 2-core machine, 2026-12-05) the checks took 5.7,
// 4.2, 3.8 and 4.6 ms against 89, 108, 120 and 124 ms for the whole read,
// uncompressed, snappy, zstd and gzip: 3-6%.

// memoryBudget bounds the decoded footer and, for each row group, the pages
// parquet-go holds at once (one per column, plus each column's
// dictionary). Real datasets use a small fraction of it: pages are about
// 1 MiB by default in pyarrow and parquet-go. A variable so that tests can
// lower it.
var memoryBudget int64 = 1 << 30

// decodedValueBytes is what parquet-go holds per value of a page beyond its
// inflated bytes: a repetition and a definition level, an offset or an
// index, rounded up. It matters for pages of nulls, whose levels compress
// to almost nothing.
const decodedValueBytes = 16

// bytesText writes n bytes for a message: in MiB from 1 MiB up.
func bytesText(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// checkFile runs before parquet-go reads anything. It starts with the
// trailer (footer length, "PAR1"): parquet-go allocates the footer length
// the file claims before it finds that the file is shorter, so 200 corrupt
// bytes claiming a 2 GB footer allocated 2 GB.
func checkFile(f *os.File, size int64, name string) error {
	bad := func(format_ string, args ...any) error {
		return &format.PosError{File: name, Msg: "not a readable parquet file: " + fmt.Sprintf(format_, args...), Err: format.ErrMalformed}
	}
	const magic = "PAR1"
	if size < 12 {
		return bad("%d bytes, shorter than a parquet header and footer", size)
	}
	var head [4]byte
	var tail [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return bad("%v", err)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return bad("%v", err)
	}
	if string(head[:]) != magic || string(tail[4:]) != magic {
		return bad(`expected "PAR1" at its start and end`)
	}
	footerLen := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footerLen > size-12 {
		return bad("the footer claims %d bytes in a %d-byte file", footerLen, size)
	}
	if footerLen > memoryBudget {
		return bad("its footer is %s, more than the %s ftune gives the metadata of a dataset file", bytesText(footerLen), bytesText(memoryBudget))
	}
	footer := make([]byte, footerLen)
	if _, err := f.ReadAt(footer, size-8-footerLen); err != nil {
		return bad("reading its %d-byte footer: %v", footerLen, err)
	}
	_, decoded, err := walkStruct(footer, size-8-footerLen, footerLen)
	if errors.Is(err, errThriftTruncated) {
		return bad("its footer's metadata runs past the footer's %d bytes", footerLen)
	}
	if err != nil {
		return bad("its footer: %v", err)
	}
	if decoded+footerLen > memoryBudget {
		return bad("its footer decodes to about %s, more than the %s ftune gives the metadata of a dataset file", bytesText(decoded+footerLen), bytesText(memoryBudget))
	}
	var md pqformat.FileMetaData
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, footer, &md); err != nil {
		return bad("its footer: %v", err)
	}
	dataEnd := size - 8 - footerLen
	leaves, err := leafLevels(md.Schema)
	if err != nil {
		return bad("%v", err)
	}
	var z inflater
	defer z.close()
	for g, rg := range md.RowGroups {
		if len(rg.Columns) != len(leaves) {
			return bad("row group %d has %d columns, and the schema %d", g+1, len(rg.Columns), len(leaves))
		}
		var held int64
		for ci, c := range rg.Columns {
			where := fmt.Sprintf("row group %d, column %q", g+1, strings.Join(c.MetaData.PathInSchema, "."))
			if c.FilePath != "" {
				return bad("%s: its data is in another file, %q; ftune reads self-contained files", where, c.FilePath)
			}
			dict, page, err := checkChunk(f, c.MetaData, leaves[ci], dataEnd, &z)
			if err != nil {
				return bad("%s: %v", where, err)
			}
			held += dict + page
		}
		if held > memoryBudget {
			return bad("row group %d holds about %s at once while it is read (a page of each column, and its dictionary), more than the %s ftune gives a dataset file", g+1, bytesText(held), bytesText(memoryBudget))
		}
	}
	return nil
}

// checkChunk walks a column chunk's pages as parquet-go will read them: from
// the dictionary page (or the first data page) to the chunk's compressed
// size. It returns the largest dictionary page's and data page's decoded
// sizes.
func checkChunk(f *os.File, m pqformat.ColumnMetaData, lv columnLevels, dataEnd int64, z *inflater) (dict, page int64, err error) {
	start := m.DataPageOffset
	if m.DictionaryPageOffset != 0 {
		start = m.DictionaryPageOffset
	}
	if start < 4 || m.TotalCompressedSize < 0 || m.TotalCompressedSize > dataEnd-start {
		return 0, 0, fmt.Errorf("its pages claim bytes %d to %d of a file whose data ends at %d", start, start+m.TotalCompressedSize, dataEnd)
	}
	end := start + m.TotalCompressedSize
	for pos := start; pos < end; {
		h, hlen, hdecoded, err := readPageHeader(f, pos, end)
		if err != nil {
			return 0, 0, err
		}
		comp, uncomp := int64(h.CompressedPageSize), int64(h.UncompressedPageSize)
		if comp < 0 || uncomp < 0 {
			return 0, 0, fmt.Errorf("the page at byte %d claims %d bytes, inflating to %d", pos, comp, uncomp)
		}
		data := pos + hlen
		if comp > end-data {
			return 0, 0, fmt.Errorf("the page at byte %d claims %d bytes, more than the %d left in its column chunk", pos, comp, end-data)
		}
		var values, levels int64
		compressed := m.Codec != pqformat.Uncompressed
		switch {
		case h.DataPageHeader.Valid:
			values = int64(h.DataPageHeader.V.NumValues)
		case h.DictionaryPageHeader.Valid:
			values = int64(h.DictionaryPageHeader.V.NumValues)
		case h.DataPageHeaderV2.Valid:
			v := h.DataPageHeaderV2.V
			values = int64(v.NumValues)
			levels = int64(v.RepetitionLevelsByteLength) + int64(v.DefinitionLevelsByteLength)
			if v.RepetitionLevelsByteLength < 0 || v.DefinitionLevelsByteLength < 0 || levels > comp {
				return 0, 0, fmt.Errorf("the page at byte %d claims %d and %d bytes of levels in %d bytes", pos, v.RepetitionLevelsByteLength, v.DefinitionLevelsByteLength, comp)
			}
			if v.IsCompressed.Valid && !v.IsCompressed.V {
				compressed = false
			}
		}
		if values < 0 {
			return 0, 0, fmt.Errorf("the page at byte %d claims %d values", pos, values)
		}
		cost := hdecoded + comp + uncomp + decodedValueBytes*values
		if cost > memoryBudget {
			return 0, 0, fmt.Errorf("the page at byte %d (%d bytes inflating to %d, %d values) needs about %s to decode, more than the %s ftune gives a dataset file", pos, comp, uncomp, values, bytesText(cost), bytesText(memoryBudget))
		}
		raw := make([]byte, comp)
		if _, err := f.ReadAt(raw, data); err != nil {
			return 0, 0, fmt.Errorf("reading the page at byte %d: %v", pos, err)
		}
		content := raw[levels:]
		if compressed {
			if content, err = z.inflate(m.Codec, content, uncomp); err != nil {
				return 0, 0, fmt.Errorf("the page at byte %d: %v", pos, err)
			}
		}
		var extra int64
		if content != nil || !compressed { // nil: a codec parquet-go refuses itself
			if extra, err = checkPage(&h, lv, raw[:levels], content); err != nil {
				return 0, 0, fmt.Errorf("the page at byte %d: %v", pos, err)
			}
		}
		if cost += extra; cost > memoryBudget {
			return 0, 0, fmt.Errorf("the page at byte %d (%d values) builds %s of delta-encoded strings, more than the %s ftune gives a dataset file", pos, values, bytesText(extra), bytesText(memoryBudget))
		}
		if h.Type == pqformat.DictionaryPage {
			dict = max(dict, cost)
		} else {
			page = max(page, cost)
		}
		pos = data + comp
	}
	return dict, page, nil
}

// readPageHeader walks the page header at pos, reading more of the chunk
// while the header runs past what was read, and decodes it once it is
// known to be bounded.
func readPageHeader(f *os.File, pos, end int64) (h pqformat.PageHeader, n, decoded int64, err error) {
	window := min(end-pos, 64<<10)
	for {
		buf := make([]byte, window)
		if _, err := f.ReadAt(buf, pos); err != nil {
			return h, 0, 0, fmt.Errorf("reading the page header at byte %d: %v", pos, err)
		}
		hlen, dec, err := walkStruct(buf, pos, end-pos)
		if errors.Is(err, errThriftTruncated) && window < end-pos && window < memoryBudget {
			window = min(end-pos, 4*window)
			continue
		}
		if errors.Is(err, errThriftTruncated) {
			return h, 0, 0, fmt.Errorf("the page header at byte %d runs past the end of its column chunk", pos)
		}
		if err != nil {
			return h, 0, 0, fmt.Errorf("the page header at byte %d: %v", pos, err)
		}
		if err := thrift.Unmarshal(&thrift.CompactProtocol{}, buf[:hlen], &h); err != nil {
			return h, 0, 0, fmt.Errorf("the page header at byte %d: %v", pos, err)
		}
		return h, int64(hlen), dec, nil
	}
}

// zstdWindow is the least decoded size checkInflate lets a zstd page ask
// for. Writers that know a page's size (parquet-go, Arrow) write a single
// segment frame whose window is the page; a streaming writer's default
// window is 8 MiB, larger than most pages, and is still a valid page.
const zstdWindow = 8 << 20

// inflater checks compressed pages; one per file, so its zstd decoder and
// scratch buffer serve every page.
type inflater struct {
	zstd    *zstd.Decoder
	scratch []byte
}

func (z *inflater) close() {
	if z.zstd != nil {
		z.zstd.Close()
	}
}

// inflate inflates src with the library parquet-go uses for codec, and
// fails if it inflates to more than limit bytes (the page header's claim,
// which the memory check counted) or does not inflate. The result is valid
// until the next call. Codecs parquet-go does not read give nil: its own
// clear error follows.
func (z *inflater) inflate(codec pqformat.CompressionCodec, src []byte, limit int64) ([]byte, error) {
	tooBig := func() error {
		return fmt.Errorf("it inflates to more than the %d bytes its header claims", limit)
	}
	buf := func(n int64) []byte {
		if int64(cap(z.scratch)) < n {
			z.scratch = make([]byte, n)
		}
		return z.scratch[:n]
	}
	var r io.Reader
	switch codec {
	case pqformat.Snappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %v", err)
		}
		if int64(n) > limit {
			return nil, tooBig()
		}
		out, err := snappy.Decode(buf(int64(n)), src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %v", err)
		}
		return out, nil
	case pqformat.Lz4Raw:
		// parquet-go doubles its buffer until the block fits, so a block
		// that never fits would take all memory.
		n, err := lz4.UncompressBlock(src, buf(limit))
		if err != nil {
			return nil, fmt.Errorf("LZ4 does not inflate into the %d bytes its header claims: %v", limit, err)
		}
		return z.scratch[:n], nil
	case pqformat.Zstd:
		// DecodeAll refuses a frame whose content size is over the
		// decoder's limit before allocating it; the output is then checked
		// against the page's own claim.
		newDecoder := func(max int64) (*zstd.Decoder, error) {
			return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)))
		}
		d := z.zstd
		if limit > zstdWindow { // rare: a decoder of its own
			var err error
			if d, err = newDecoder(limit); err != nil {
				return nil, err
			}
			defer d.Close()
		} else if d == nil {
			var err error
			if d, err = newDecoder(zstdWindow); err != nil {
				return nil, err
			}
			z.zstd = d
		}
		out, err := d.DecodeAll(src, z.scratch[:0])
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || int64(len(out)) > limit {
			return nil, tooBig()
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if cap(out) > cap(z.scratch) {
			z.scratch = out
		}
		return out, nil
	case pqformat.Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v", err)
		}
		r = zr
	case pqformat.Brotli:
		r = brotli.NewReader(bytes.NewReader(src))
	default:
		return nil, nil
	}
	out := buf(limit + 1)
	n := 0
	for {
		if int64(n) > limit {
			return nil, tooBig()
		}
		k, err := r.Read(out[n:])
		n += k
		if err == io.EOF {
			return out[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}
