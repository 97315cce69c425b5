package prep

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"unsafe"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/internal/fsutil"
)

// Token cache file layout (little-endian), version 5 (3: ftune's tokenizer
// gives prep byte offsets, so answers are labelled on the whole rendering's
// ids, which differ from version 2's where a template's token swallows the
// whitespace after it, as Phi-3's <|assistant|> does; 4: answers are found
// where the whole rendering writes them also when the template rewrites
// them, and a turn may open with the header the template writes in
// history, so labels of templates that rewrite answers may differ from
// version 3's; 5: the cache records every example tokenised, not only the
// documents kept: the outcome of each, so that the counts of truncated
// and dropped examples are known from the cache and a share of the
// examples (a held-out split) can be taken from it, and each one's key,
// which finds examples repeated word for word; 6: a CRC-32 of everything
// before it ends the file, checked whenever the cache is opened, so a
// cache damaged in place (a changed byte, cut short, added to) is rebuilt
// instead of trained on):
//
//	offset 0    magic "FTUNETKC"
//	       8    version uint32, 4 bytes reserved
//	      16    tokenizer hash [32]byte
//	      48    template hash  [32]byte
//	      80    options hash   [32]byte (what else changes the tokens)
//	     112    data hash      [32]byte (the examples tokenised)
//	     144    documents D uint64
//	     152    tokens N uint64
//	     160    examples E uint64 (tokenised; the D kept ones are documents)
//	     168    truncated uint64 (kept, cut to the maximum length)
//	     176    dropped uint64 (longer than the maximum length, overflow drop)
//	     184    dropped without a label uint64 (nothing left to learn)
//	     192    flags uint64 (bit 0: example keys recorded)
//	     200    document offsets (D+1) x uint64, offsets[0] = 0, offsets[D] = N
//	            example keys E x uint64 (ExampleKey; with flag bit 0 only)
//	            subject ids D x int32
//	            example outcomes E x uint8 (Kept, Truncated, Dropped,
//	            DroppedNoLabel: the kept and truncated ones, in order, are
//	            the documents; skipped examples are never cached)
//	            0 to 3 bytes of padding to a multiple of 4
//	            token ids N x int32
//	            label mask N x uint8 (1: learnt)
//	            checksum uint32: CRC-32 (IEEE) of every byte before it
//
// Every section starts 4-byte aligned, so token ids are read in place from
// the mapping. The file size is fixed by D, N, E and the flags and checked
// at open, then the checksum (checksums), then the outcomes against
// the header's counts.
const (
	cacheMagic   = "FTUNETKC"
	cacheVersion = 6
	cacheHeader  = 200
	cacheTrailer = 4 // the checksum
	flagKeys     = 1 // example keys recorded
)

// cacheCRC is the checksum's table. CRC-32 detects every change of up to
// 32 consecutive bits (any one byte) and misses other damage once in 2^32;
// the IEEE polynomial, which Go computes with carry-less multiplication,
// hashed a 200 MB buffer in 8-9 ms on an AMD EPYC against Castagnoli's
// 22 ms (xxhash64: 12-15 ms, sha256: 128 ms).
var cacheCRC = crc32.IEEETable

// Hash identifies what made a cache: a tokenizer, a template, options.
type Hash [32]byte

// HashBytes hashes file contents or any byte string.
func HashBytes(parts ...[]byte) Hash {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:]) // length prefix: ("ab","c") and ("a","bc") differ
		h.Write(p)
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// HashString hashes a string, e.g. chat.Template.Hash() or a config.
func HashString(s string) Hash { return HashBytes([]byte(s)) }

func (h Hash) String() string { return hex.EncodeToString(h[:8]) }

// CacheKey is what a cache must match to be used. Data is the content
// of the examples (HashExamples): a cache keyed without it (the zero Hash)
// would be reused after its data file changed.
type CacheKey struct {
	Tokenizer, Template, Options, Data Hash
}

// putTools hashes a message's tool calls, call id and name, only when it
// has them (the keys of data without tools stay as they were), each after
// a tag no role can equal.
func putTools(put func(string), m format.Message) {
	for _, c := range m.ToolCalls {
		put("\x00call")
		put(c.ID)
		put(c.Name)
		put(c.Arguments)
	}
	if m.ToolCallID != "" {
		put("\x00call id")
		put(m.ToolCallID)
	}
	if m.Name != "" {
		put("\x00name")
		put(m.Name)
	}
}

// HashExamples hashes what tokenisation reads from examples (roles,
// contents, reasoning, tool calls and lists, texts, in order), so that an edited data file, or a subject
// setting that changes its examples, invalidates its cache.
func HashExamples(exs []format.Example) Hash {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, ex := range exs {
		binary.LittleEndian.PutUint64(n[:], uint64(len(ex.Messages)))
		h.Write(n[:])
		put(ex.Text)
		for _, m := range ex.Messages {
			put(m.Role)
			put(m.Content)
			// Only when present, so that the keys of data without
			// reasoning stay as they were; a tag no role can equal keeps
			// the stream unambiguous.
			if m.ReasoningContent != "" {
				put("\x00reasoning")
				put(m.ReasoningContent)
			}
			if m.NoLoss {
				put("\x00weight 0")
			}
			putTools(put, m)
		}
		if ex.Tools != "" {
			put("\x00tools")
			put(ex.Tools)
		}
		// Likewise a preference record's completions.
		if ex.IsPreference() {
			for _, r := range []*format.Reply{ex.Chosen, ex.Rejected} {
				if r == nil { // an unpaired record's (KTO's) other one
					put("\x00none")
					continue
				}
				put("\x00completion")
				put(r.Text)
				binary.LittleEndian.PutUint64(n[:], uint64(len(r.Messages)))
				h.Write(n[:])
				for _, m := range r.Messages {
					put(m.Role)
					put(m.Content)
					put(m.ReasoningContent)
					putTools(put, m)
				}
			}
		}
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// OptionsHash hashes the preprocessing options and EOS id, which change
// the tokens as much as the tokenizer does.
func OptionsHash(o Options, eos int) Hash {
	s := fmt.Sprintf("train_on_inputs=%v max_len=%d overflow=%d no_eos=%v eos=%d", o.TrainOnInputs, o.MaxLen, o.Overflow, o.NoEOS, eos)
	if o.MaskHistory { // only when set: the other options' keys stay as they were
		s += " mask_history"
	}
	return HashString(s + labellingRevision)
}

// labellingRevision changes every key when prep turns the same examples
// into other tokens or labels, so that caches of the earlier ones are
// rebuilt rather than trained on. "" was the first; " labelling=2": a
// text that ends with EOS gets no second one, and a conversation the
// assistant opens has that turn's header as context.
const labellingRevision = " labelling=2"

var (
	// ErrCacheStale: the cache was made by another tokenizer, template or
	// options; rebuild it.
	ErrCacheStale = errors.New("token cache is stale")
	// ErrCacheCorrupt: not a token cache, or one damaged since it was
	// written (its checksum does not match, cut short, added to).
	ErrCacheCorrupt = errors.New("token cache is corrupt")
)

// WriteCache writes documents to path atomically (a temporary file renamed
// into place), so a crash never leaves a half-written cache to be read.
// Each document stands for one example, kept whole (WriteTokenization
// records what became of every example). The temporary files of earlier
// writes of path that were killed before their rename are removed first
// (removeKilledCacheTemps says which files qualify); OpenOrBuildLog says
// so on its log.
func WriteCache(path string, key CacheKey, docs []Tokenized) error {
	return WriteCacheContext(context.Background(), path, key, docs)
}

// WriteCacheContext is WriteCache stopping once ctx is done; the cache is
// then not written (nor a partial one left).
func WriteCacheContext(ctx context.Context, path string, key CacheKey, docs []Tokenized) error {
	return writeCache(ctx, path, key, Tokenization{Docs: docs}, nil)
}

// WriteTokenization is WriteCacheContext of a tokenisation with the
// outcome of every example (nil Outcomes: each document one example,
// kept) and, when t.Keys is set, their keys; log (nil: nowhere) hears
// which leftovers of killed writes were removed. A tokenisation that
// skipped examples is refused: the cache would leave them out unsaid.
func WriteTokenization(ctx context.Context, path string, key CacheKey, t Tokenization, log io.Writer) error {
	return writeCache(ctx, path, key, t, log)
}

// writeCache is WriteTokenization.
func writeCache(ctx context.Context, path string, key CacheKey, t Tokenization, log io.Writer) error {
	docs, outcomes := t.Docs, t.Outcomes
	if outcomes == nil {
		outcomes = make([]Outcome, len(docs))
	}
	var counts [4]uint64 // by outcome
	for i, o := range outcomes {
		if o < Kept || o > DroppedNoLabel {
			return fmt.Errorf("write cache %s: example %d has outcome %d: skipped examples are not cached", path, i, o)
		}
		counts[o]++
	}
	if kept := counts[Kept] + counts[Truncated]; kept != uint64(len(docs)) {
		return fmt.Errorf("write cache %s: %d documents for %d kept examples", path, len(docs), kept)
	}
	if t.Keys != nil && len(t.Keys) != len(outcomes) {
		return fmt.Errorf("write cache %s: %d example keys for %d examples", path, len(t.Keys), len(outcomes))
	}
	var n uint64
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write cache %s: interrupted: %w", path, err)
	}
	for i, d := range docs {
		if len(d.IDs) != d.labelsLen() {
			return fmt.Errorf("write cache %s: document %d has %d ids and %d labels", path, i, len(d.IDs), d.labelsLen())
		}
		for j, l := range d.Labels { // a mask (Learnt) holds nothing else
			if l != IgnoreIndex && l != d.IDs[j] {
				return fmt.Errorf("write cache %s: document %d token %d: label %d is neither the token %d nor ignored (the cache stores a mask)", path, i, j, l, d.IDs[j])
			}
		}
		n += uint64(len(d.IDs))
	}
	if err := noteKilledCacheTemps(path, log); err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		sum := crc32.New(cacheCRC)
		bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<20)
		hdr := make([]byte, cacheHeader)
		copy(hdr, cacheMagic)
		binary.LittleEndian.PutUint32(hdr[8:], cacheVersion)
		copy(hdr[16:], key.Tokenizer[:])
		copy(hdr[48:], key.Template[:])
		copy(hdr[80:], key.Options[:])
		copy(hdr[112:], key.Data[:])
		binary.LittleEndian.PutUint64(hdr[144:], uint64(len(docs)))
		binary.LittleEndian.PutUint64(hdr[152:], n)
		binary.LittleEndian.PutUint64(hdr[160:], uint64(len(outcomes)))
		binary.LittleEndian.PutUint64(hdr[168:], counts[Truncated])
		binary.LittleEndian.PutUint64(hdr[176:], counts[Dropped])
		binary.LittleEndian.PutUint64(hdr[184:], counts[DroppedNoLabel])
		var flags uint64
		if t.Keys != nil {
			flags |= flagKeys
		}
		binary.LittleEndian.PutUint64(hdr[192:], flags)
		bw.Write(hdr)
		var b [8]byte
		off := uint64(0)
		binary.LittleEndian.PutUint64(b[:], 0)
		bw.Write(b[:])
		for _, d := range docs {
			off += uint64(len(d.IDs))
			binary.LittleEndian.PutUint64(b[:], off)
			bw.Write(b[:])
		}
		for _, k := range t.Keys {
			binary.LittleEndian.PutUint64(b[:], k)
			bw.Write(b[:])
		}
		for _, d := range docs {
			binary.LittleEndian.PutUint32(b[:], uint32(int32(d.Subject)))
			bw.Write(b[:4])
		}
		for _, o := range outcomes {
			bw.WriteByte(byte(o))
		}
		bw.Write(make([]byte, pad4(uint64(len(outcomes)))))
		for i, d := range docs {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
			}
			for _, id := range d.IDs {
				binary.LittleEndian.PutUint32(b[:], uint32(id))
				bw.Write(b[:4])
			}
		}
		for i, d := range docs {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
			}
			for j := range d.IDs {
				if d.Label(j) == IgnoreIndex {
					bw.WriteByte(0)
				} else {
					bw.WriteByte(1)
				}
			}
		}
		if err := ctx.Err(); err != nil { // before the sync, seconds at 400 MB
			return fmt.Errorf("interrupted: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
		return err
	})
}

// pad4 is the padding that brings n bytes to a multiple of 4.
func pad4(n uint64) uint64 { return (4 - n%4) % 4 }

// Cache is an opened token cache. Token ids are read from the memory
// mapping: slices it returns must not be modified.
type Cache struct {
	path     string
	data     []byte
	unmap    func() error
	Key      CacheKey
	offsets  []uint64
	subjects []int32
	tokens   []int32
	mask     []byte
	outcomes []byte // one per example (an Outcome)
	keys     []byte // E little-endian uint64s; nil when not recorded
}

// OpenCache maps a cache and checks that its contents are those written
// (their checksum, ErrCacheCorrupt otherwise) and that key matches what
// made it (ErrCacheStale).
func OpenCache(path string, key CacheKey) (*Cache, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	c, err := parseCache(path, data, key)
	if err != nil {
		unmap()
		return nil, err
	}
	c.unmap = unmap
	return c, nil
}

func parseCache(path string, data []byte, key CacheKey) (*Cache, error) {
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", path, ErrCacheCorrupt, fmt.Sprintf(format, a...))
	}
	if len(data) < 8 || !bytes.Equal(data[:8], []byte(cacheMagic)) {
		return nil, corrupt("expected magic %q at offset 0", cacheMagic)
	}
	if len(data) < cacheHeader+cacheTrailer {
		return nil, corrupt("size %d bytes, less than a cache's header and checksum (%d): cut short", len(data), cacheHeader+cacheTrailer)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != cacheVersion {
		// A version field damaged in place is not another layout: the
		// checksum of this version's cache still holds once the field
		// reads this version (older layouts have no checksum).
		if written, got := checksums(data, cacheVersion); got == written {
			return nil, corrupt("its version field reads %d, but it is a version %d cache (its checksum holds for that version): the field was damaged", v, cacheVersion)
		}
		// An older layout is not damage: rebuilding is the remedy.
		return nil, fmt.Errorf("%s: %w: cache format version %d, this ftune writes version %d", path, ErrCacheStale, v, cacheVersion)
	}
	d := binary.LittleEndian.Uint64(data[144:])
	n := binary.LittleEndian.Uint64(data[152:])
	e := binary.LittleEndian.Uint64(data[160:])
	var counts [4]uint64 // by outcome, as the header gives them
	counts[Truncated] = binary.LittleEndian.Uint64(data[168:])
	counts[Dropped] = binary.LittleEndian.Uint64(data[176:])
	counts[DroppedNoLabel] = binary.LittleEndian.Uint64(data[184:])
	flags := binary.LittleEndian.Uint64(data[192:])
	// Bound the counts before multiplying so a corrupt header cannot
	// overflow the size computation.
	if d > uint64(len(data)) || n > uint64(len(data)) || e > uint64(len(data)) {
		return nil, corrupt("header claims %d documents, %d tokens and %d examples in a %d-byte file", d, n, e, len(data))
	}
	if flags&^flagKeys != 0 {
		return nil, corrupt("unknown flags %#x", flags)
	}
	offSec := uint64(cacheHeader)
	keySec := offSec + 8*(d+1)
	subSec := keySec
	if flags&flagKeys != 0 {
		subSec += 8 * e
	}
	outSec := subSec + 4*d
	tokSec := outSec + e + pad4(e)
	maskSec := tokSec + 4*n
	if size := maskSec + n + cacheTrailer; size != uint64(len(data)) {
		return nil, corrupt("size %d bytes, its header implies %d: cut short, added to, or its header damaged", len(data), size)
	}
	// Every byte, before the key is read: damage in the header's hashes
	// is damage, not a cache of other data.
	if written, got := checksums(data, cacheVersion); got != written {
		return nil, corrupt("its contents fail their checksum (CRC-32 %08x, written %08x): the file changed after ftune wrote it", got, written)
	}
	var got CacheKey
	copy(got.Tokenizer[:], data[16:48])
	copy(got.Template[:], data[48:80])
	copy(got.Options[:], data[80:112])
	copy(got.Data[:], data[112:144])
	for _, k := range []struct {
		what      string
		got, want Hash
	}{{"tokenizer", got.Tokenizer, key.Tokenizer}, {"chat template", got.Template, key.Template}, {"preprocessing options", got.Options, key.Options}, {"data", got.Data, key.Data}} {
		if k.got != k.want {
			return nil, fmt.Errorf("%s: %w: made with %s %s, now %s", path, ErrCacheStale, k.what, k.got, k.want)
		}
	}
	c := &Cache{path: path, data: data, Key: got, mask: data[maskSec : maskSec+n], outcomes: data[outSec : outSec+e]}
	if flags&flagKeys != 0 {
		c.keys = data[keySec:subSec]
	}
	var seen [4]uint64
	for i, o := range c.outcomes {
		if o > byte(DroppedNoLabel) {
			return nil, corrupt("example %d has outcome %d", i, o)
		}
		seen[o]++
	}
	if seen[Kept]+seen[Truncated] != d || seen[Truncated] != counts[Truncated] || seen[Dropped] != counts[Dropped] || seen[DroppedNoLabel] != counts[DroppedNoLabel] {
		return nil, corrupt("the outcomes of the %d examples (%d kept, %d truncated, %d dropped, %d without a label) do not match the header's %d documents, %d truncated, %d dropped, %d without a label",
			e, seen[Kept], seen[Truncated], seen[Dropped], seen[DroppedNoLabel], d, counts[Truncated], counts[Dropped], counts[DroppedNoLabel])
	}
	c.offsets = make([]uint64, d+1)
	for i := range c.offsets {
		c.offsets[i] = binary.LittleEndian.Uint64(data[offSec+8*uint64(i):])
		if i > 0 && (c.offsets[i] < c.offsets[i-1] || c.offsets[i] > n) {
			return nil, corrupt("document offset %d out of order", i)
		}
	}
	if c.offsets[0] != 0 || c.offsets[d] != n {
		return nil, corrupt("document offsets do not cover the %d tokens", n)
	}
	c.subjects = int32s(data[subSec:outSec])
	c.tokens = int32s(data[tokSec:maskSec])
	return c, nil
}

// checksums gives the checksum written at the end of a cache of at least
// cacheHeader+cacheTrailer bytes and the one its contents give, its
// version field read as version (what it was written as, where that field
// alone was damaged). A 191 MB cache takes about 10 ms once its pages are
// mapped; mapping them in on first touch (about 100 ms there) is what
// checking the ids against the vocabulary and reading the documents,
// which follow every opening, paid before.
func checksums(data []byte, version uint32) (written, got uint32) {
	body := data[:len(data)-cacheTrailer]
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], version)
	got = crc32.Update(0, cacheCRC, body[:8])
	got = crc32.Update(got, cacheCRC, v[:])
	got = crc32.Update(got, cacheCRC, body[12:])
	return binary.LittleEndian.Uint32(data[len(data)-cacheTrailer:]), got
}

// int32s views little-endian bytes as int32s without copying where the
// host is little-endian and the bytes aligned, and decodes them otherwise.
func int32s(b []byte) []int32 {
	n := len(b) / 4
	if n == 0 {
		return nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// CheckVocab finds a token id outside [0, vocab): a cache written for
// another model, or damaged, would otherwise index past the embedding
// table with nothing to say which file and document held the id.
func (c *Cache) CheckVocab(vocab int) error {
	for i, id := range c.tokens {
		if id < 0 || int(id) >= vocab {
			doc := sort.Search(c.Len(), func(d int) bool { return c.offsets[d+1] > uint64(i) })
			return fmt.Errorf("%s: %w: document %d (of %d), token %d: id %d outside the model's vocabulary of %d (delete the cache to rebuild it)",
				c.path, ErrCacheCorrupt, doc, c.Len(), uint64(i)-c.offsets[doc], id, vocab)
		}
	}
	return nil
}

// Len is the number of documents.
func (c *Cache) Len() int { return len(c.offsets) - 1 }

// DocLen is the number of tokens of document i.
func (c *Cache) DocLen(i int) int { return int(c.offsets[i+1] - c.offsets[i]) }

// NumTokens is the number of tokens of all documents.
func (c *Cache) NumTokens() int { return len(c.tokens) }

// Doc returns document i. IDs share the mapping (read-only); Labels are
// built from the mask.
func (c *Cache) Doc(i int) Tokenized {
	lo, hi := c.offsets[i], c.offsets[i+1]
	ids := c.tokens[lo:hi:hi]
	labels := make([]int32, len(ids))
	for j, id := range ids {
		labels[j] = IgnoreIndex
		if c.mask[lo+uint64(j)] != 0 {
			labels[j] = id
		}
	}
	return Tokenized{IDs: ids, Labels: labels, Subject: int(c.subjects[i])}
}

// MappedDoc returns document i as it lies in the mapping: IDs, and Learnt
// (the mask) in place of Labels, neither copied, so reading every document
// costs no memory but the Tokenized themselves (Doc built 4 bytes of
// labels a token, and callers copied the ids out before Close). Both are
// read-only and valid until Close: a caller keeps the cache open while it
// uses them (Pack and Pad copy what they need into rows).
func (c *Cache) MappedDoc(i int) Tokenized {
	lo, hi := c.offsets[i], c.offsets[i+1]
	return Tokenized{IDs: c.tokens[lo:hi:hi], Learnt: c.mask[lo:hi:hi], Subject: int(c.subjects[i])}
}

// MappedDocs returns all documents as MappedDoc does.
func (c *Cache) MappedDocs() []Tokenized {
	out := make([]Tokenized, c.Len())
	for i := range out {
		out[i] = c.MappedDoc(i)
	}
	return out
}

// Examples is the number of examples the documents were made from
// (dropped ones too).
func (c *Cache) Examples() int { return len(c.outcomes) }

// Outcomes is what became of each example, in order: the Kept and
// Truncated ones are the documents.
func (c *Cache) Outcomes() []Outcome {
	out := make([]Outcome, len(c.outcomes))
	for i, o := range c.outcomes {
		out[i] = Outcome(o)
	}
	return out
}

// Keys are the examples' ExampleKey, or nil when the cache was written
// without them.
func (c *Cache) Keys() []uint64 {
	if c.keys == nil {
		return nil
	}
	out := make([]uint64, len(c.keys)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(c.keys[8*i:])
	}
	return out
}

// Stats counts the examples the cache was made from as TokenizeAll did
// (without the skipped, which are never cached), maxPositions being
// Options.MaxPositions: an example over it is named by its document
// ("PATH document I") in FirstOverPositions.
func (c *Cache) Stats(maxPositions int) Stats {
	var st Stats
	st.Examples = len(c.outcomes)
	for _, o := range c.outcomes {
		switch Outcome(o) {
		case Truncated:
			st.Truncated++
		case Dropped:
			st.Dropped++
		case DroppedNoLabel:
			st.DroppedNoLabel++
		}
	}
	st.Kept = c.Len()
	st.Tokens = len(c.tokens)
	for _, m := range c.mask {
		st.LabelTokens += int(m)
	}
	for i := range c.Len() {
		n := c.DocLen(i)
		st.Longest = max(st.Longest, n)
		if maxPositions > 0 && n > maxPositions {
			if st.OverPositions == 0 {
				st.FirstOverPositions = fmt.Sprintf("%s document %d", c.path, i)
			}
			st.OverPositions++
		}
	}
	return st
}

// Docs returns all documents (see Doc).
func (c *Cache) Docs() []Tokenized {
	out := make([]Tokenized, c.Len())
	for i := range out {
		out[i] = c.Doc(i)
	}
	return out
}

// Close unmaps the file; slices from Doc must not be used afterwards.
func (c *Cache) Close() error {
	if c.unmap == nil {
		return nil
	}
	err := c.unmap()
	c.unmap, c.data, c.tokens, c.subjects, c.mask, c.outcomes, c.keys = nil, nil, nil, nil, nil, nil, nil
	return err
}

// OpenOrBuild opens the cache at path, or builds and writes it when it is
// missing, stale or corrupt. rebuilt says whether build ran.
func OpenOrBuild(path string, key CacheKey, build func() ([]Tokenized, error)) (c *Cache, rebuilt bool, err error) {
	return OpenOrBuildContext(context.Background(), path, key, build)
}

// OpenOrBuildContext is OpenOrBuild whose writing stops once ctx is done
// (build should watch ctx too: TokenizeAllContext).
func OpenOrBuildContext(ctx context.Context, path string, key CacheKey, build func() ([]Tokenized, error)) (c *Cache, rebuilt bool, err error) {
	return OpenOrBuildLog(ctx, path, key, nil, build)
}

// OpenOrBuildLog is OpenOrBuildContext writing to log (nil: discarded) a
// line for what it did beside the cache that the user should know: why a
// cache at path was not used (stale: another version of ftune's layout,
// or made of other data, tokenizer, template or options; or damaged)
// before it is rebuilt, and the temporary files of killed writes of path
// removed.
func OpenOrBuildLog(ctx context.Context, path string, key CacheKey, log io.Writer, build func() ([]Tokenized, error)) (c *Cache, rebuilt bool, err error) {
	return OpenOrBuildTokenization(ctx, path, key, log, func() (Tokenization, error) {
		docs, err := build()
		return Tokenization{Docs: docs}, err
	})
}

// CheckWritable checks that the cache at path can be written, by creating
// the temporary file that writing it creates (beside it) and removing it:
// an error names the file and why (a read-only folder, a path too long).
func CheckWritable(path string) error {
	f, err := fsutil.CreateAtomic(path, 0o644)
	if err != nil {
		return fmt.Errorf("token cache %s cannot be written: %w", path, err)
	}
	return f.Abort()
}

// OpenOrBuildTokenization is OpenOrBuildLog whose build gives what became
// of every example (WriteTokenization).
func OpenOrBuildTokenization(ctx context.Context, path string, key CacheKey, log io.Writer, build func() (Tokenization, error)) (c *Cache, rebuilt bool, err error) {
	c, err = OpenCache(path, key)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrCacheStale) && !errors.Is(err, ErrCacheCorrupt) && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if log != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(log, "%v: rebuilding it\n", err)
	}
	// A folder that cannot take the cache is found before build, which
	// may tokenise for minutes, not after it. (A disk that fills while the
	// cache is written is still found only then.)
	if err := CheckWritable(path); err != nil {
		return nil, false, err
	}
	t, err := build()
	if err != nil {
		return nil, true, err
	}
	if err := writeCache(ctx, path, key, t, log); err != nil {
		return nil, true, err
	}
	c, err = OpenCache(path, key)
	return c, true, err
}
