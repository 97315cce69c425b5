package parquet

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/parquet-go/parquet-go/encoding/delta"
	pqformat "github.com/parquet-go/parquet-go/format"
)

// This file checks what is inside a page, once inflated. parquet-go's
// decoders size their output by the counts the encoded data claims, not by
// the page's value count: one run of the RLE/bit-packed hybrid (levels,
// dictionary indices, booleans) may claim 2^31-1 values in five bytes,
// which parquet-go allocates as 8 GiB before writing the first; a
// DELTA_BINARY_PACKED header's total count is allocated the same way. The
// checks add up the runs and read the delta headers, and refuse any count
// beyond the page's values (which the memory budget counted).

// columnLevels is a leaf column's maximum repetition and definition
// levels: the bit widths of its level streams, and whether it has them.
type columnLevels struct{ rep, def int }

// leafLevels walks the flattened schema (each group followed by its
// children) and returns each leaf column's levels, in column chunk order.
func leafLevels(schema []pqformat.SchemaElement) ([]columnLevels, error) {
	if len(schema) == 0 {
		return nil, fmt.Errorf("the schema is empty")
	}
	var leaves []columnLevels
	next := 1
	var walk func(rep, def, depth int) error
	walk = func(rep, def, depth int) error {
		if next >= len(schema) {
			return fmt.Errorf("the schema's groups claim more children than its %d elements", len(schema))
		}
		if depth > maxThriftDepth {
			return fmt.Errorf("the schema nests more than %d deep", maxThriftDepth)
		}
		e := schema[next]
		next++
		if e.RepetitionType.Valid {
			switch e.RepetitionType.V {
			case pqformat.Optional:
				def++
			case pqformat.Repeated:
				rep, def = rep+1, def+1
			}
		}
		if e.Type.Valid { // a leaf has a physical type; a group (even empty) has none
			leaves = append(leaves, columnLevels{rep, def})
			return nil
		}
		if !e.NumChildren.Valid || e.NumChildren.V <= 0 {
			return nil // an empty group: no columns
		}
		if int(e.NumChildren.V) > len(schema)-next {
			return fmt.Errorf("schema element %q claims %d children, more than the %d elements after it", e.Name, e.NumChildren.V, len(schema)-next)
		}
		for range e.NumChildren.V {
			if err := walk(rep, def, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	root := schema[0]
	n := 0
	if root.NumChildren.Valid {
		n = int(root.NumChildren.V)
	}
	if n < 0 || n > len(schema)-1 {
		return nil, fmt.Errorf("the schema's root claims %d children in %d elements", n, len(schema))
	}
	for range n {
		if err := walk(0, 0, 1); err != nil {
			return nil, err
		}
	}
	return leaves, nil
}

// checkPage checks an inflated page. For a v2 data page, levels holds its
// (never compressed) level streams and data its values; for the others,
// data is the whole page. extra is what decoding builds beyond the page's
// bytes and values: the strings of DELTA_BYTE_ARRAY, each a prefix of the
// one before plus a suffix, which a few bytes can make quadratic.
func checkPage(h *pqformat.PageHeader, lv columnLevels, levels, data []byte) (extra int64, err error) {
	switch {
	case h.DataPageHeader.Valid:
		v := h.DataPageHeader.V
		n := int64(v.NumValues)
		if lv.rep > 0 {
			if data, err = levelsV1(data, v.RepetitionLevelEncoding, lv.rep, n, "repetition"); err != nil {
				return 0, err
			}
		}
		if lv.def > 0 {
			if data, err = levelsV1(data, v.DefinitionLevelEncoding, lv.def, n, "definition"); err != nil {
				return 0, err
			}
		}
		return checkValues(data, v.Encoding, n)
	case h.DataPageHeaderV2.Valid:
		v := h.DataPageHeaderV2.V
		n := int64(v.NumValues)
		repLen := int(v.RepetitionLevelsByteLength)
		if lv.rep > 0 {
			if err := checkRuns(levels[:repLen], bits.Len(uint(lv.rep)), n, "repetition levels"); err != nil {
				return 0, err
			}
		}
		if lv.def > 0 {
			if err := checkRuns(levels[repLen:], bits.Len(uint(lv.def)), n, "definition levels"); err != nil {
				return 0, err
			}
		}
		return checkValues(data, v.Encoding, n)
	}
	// A dictionary page holds its values plain (old writers call that
	// PLAIN_DICTIONARY): lengths inside the page's bytes, whose count the
	// memory check bounded.
	return 0, nil
}

// levelsV1 checks a v1 data page's level stream at the start of p and
// returns what follows it.
func levelsV1(p []byte, enc pqformat.Encoding, maxLevel int, n int64, what string) ([]byte, error) {
	width := bits.Len(uint(maxLevel))
	switch enc {
	case pqformat.RLE:
		if len(p) < 4 {
			return nil, fmt.Errorf("its %s levels' length runs past the page", what)
		}
		size := int64(binary.LittleEndian.Uint32(p))
		if size > int64(len(p)-4) {
			return nil, fmt.Errorf("its %s levels claim %d bytes of the %d left in the page", what, size, len(p)-4)
		}
		if err := checkRuns(p[4:4+size], width, n, what+" levels"); err != nil {
			return nil, err
		}
		return p[4+size:], nil
	case pqformat.BitPacked: // deprecated: exactly n values, packed
		size := (n*int64(width) + 7) / 8
		if size > int64(len(p)) {
			return nil, fmt.Errorf("its %d bit-packed %s levels need %d bytes of the %d in the page", n, what, size, len(p))
		}
		return p[size:], nil
	}
	return nil, fmt.Errorf("its %s levels have encoding %v, which parquet does not define for levels", what, enc)
}

// plainDictionary is RLE_DICTIONARY's name in data pages of parquet 1.0
// writers (deprecated in parquet-go's format package, still in files).
const plainDictionary pqformat.Encoding = 2

// checkValues checks the counts a page's values claim, and returns the
// bytes DELTA_BYTE_ARRAY's strings add up to.
func checkValues(p []byte, enc pqformat.Encoding, n int64) (extra int64, err error) {
	switch enc {
	case pqformat.RLEDictionary, plainDictionary:
		if len(p) == 0 {
			return 0, nil // no values: every one is null
		}
		if p[0] > 32 {
			return 0, fmt.Errorf("its dictionary indices claim %d bits each (at most 32)", p[0])
		}
		return 0, checkRuns(p[1:], int(p[0]), n, "dictionary indices")
	case pqformat.RLE: // booleans
		if len(p) < 4 {
			return 0, nil // parquet-go's own error
		}
		size := int64(binary.LittleEndian.Uint32(p))
		if size > int64(len(p)-4) {
			return 0, fmt.Errorf("its RLE values claim %d bytes of the %d left in the page", size, len(p)-4)
		}
		return 0, checkRuns(p[4:4+size], 1, n, "RLE values")
	case pqformat.DeltaBinaryPacked, pqformat.DeltaLengthByteArray:
		_, err := checkDelta(p, n, "delta-encoded values")
		return 0, err
	case pqformat.DeltaByteArray:
		rest, err := checkDelta(p, n, "prefix lengths")
		if err != nil || rest == nil {
			return 0, err
		}
		if _, err := checkDelta(rest, n, "suffix lengths"); err != nil {
			return 0, err
		}
		// Both counts are bounded now, so decoding the lengths is too.
		var d delta.BinaryPackedEncoding
		prefix, err := d.DecodeInt32(nil, p)
		if err != nil {
			return 0, nil // parquet-go's own error
		}
		suffix, err := d.DecodeInt32(nil, rest)
		if err != nil {
			return 0, nil
		}
		for i := range min(len(prefix), len(suffix)) {
			extra += int64(max(prefix[i], 0)) + int64(max(suffix[i], 0))
		}
		return extra, nil
	}
	return 0, nil
}

// checkRuns checks the runs of an RLE/bit-packed hybrid stream of the
// given bit width. A run claims a count, and parquet-go sizes its output by
// it before reading the run: an RLE run's values must fit the page's n (with
// 7 to spare), and a bit-packed run's bytes must be in the stream (writers
// pad bit-packed runs past n: DuckDB writes 256 levels for 100 values).
func checkRuns(p []byte, width int, n int64, what string) error {
	var rle, packed int64
	for i := 0; i < len(p); {
		h, k := binary.Uvarint(p[i:])
		if k <= 0 {
			return nil // a truncated or overlong header: parquet-go's own error
		}
		i += k
		count := int64(h >> 1)
		if h&1 == 1 { // bit-packed: count groups of 8 values, width bytes each
			if width == 0 {
				if packed += 8 * count; packed > n+7 {
					return fmt.Errorf("its %s claim at least %d zero-width values in a page of %d", what, packed, n)
				}
				continue
			}
			if count > int64(len(p)-i)/int64(width) {
				return fmt.Errorf("its %s claim %d bit-packed values, more than the %d bytes left hold", what, 8*count, len(p)-i)
			}
			i += int(count) * width
		} else {
			if rle += count; rle > n+7 {
				return fmt.Errorf("its %s claim at least %d values in a page of %d", what, rle, n)
			}
			i += (width + 7) / 8
		}
	}
	return nil
}

// checkDelta reads a DELTA_BINARY_PACKED stream's header, refuses a total
// count over n, walks its blocks, and returns what follows the stream.
func checkDelta(p []byte, n int64, what string) ([]byte, error) {
	var hdr [3]uint64
	i := 0
	for j := range hdr {
		v, k := binary.Uvarint(p[i:])
		if k <= 0 {
			return nil, nil // parquet-go's own error
		}
		hdr[j], i = v, i+k
	}
	if _, k := binary.Varint(p[i:]); k <= 0 {
		return nil, nil
	} else {
		i += k
	}
	blockSize, miniBlocks, total := hdr[0], hdr[1], hdr[2]
	if int64(total) < 0 || int64(total) > n {
		return nil, fmt.Errorf("its %s claim %d values in a page of %d", what, total, n)
	}
	if miniBlocks == 0 || blockSize == 0 || blockSize%128 != 0 || blockSize/miniBlocks%32 != 0 || blockSize > 1<<20 {
		return nil, nil // parquet-go refuses these headers itself
	}
	miniSize := int64(blockSize / miniBlocks)
	for left := int64(total) - 1; left > 0; {
		if _, k := binary.Varint(p[i:]); k <= 0 { // the block's minimum delta
			return nil, nil
		} else {
			i += k
		}
		if i+int(miniBlocks) > len(p) {
			return nil, nil
		}
		widths := p[i : i+int(miniBlocks)]
		i += int(miniBlocks)
		for _, w := range widths {
			if left <= 0 {
				break
			}
			i += int(miniSize * int64(w) / 8)
			left -= miniSize
			if i > len(p) {
				return nil, nil
			}
		}
	}
	return p[i:], nil
}
