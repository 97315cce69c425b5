package recipe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/track"
)

// A file subject's token cache (data files, not a subject folder) is
// keyed on the bytes of its files and on how they are read, rather than
// on the examples read from them (prep.HashExamples): a run whose cache
// is up to date then hashes its files and reads no record. The key is
// exact as long as the bytes hashed are the bytes parsed: a cold read
// hashes what the parser reads as it reads it (format.Options.Digest),
// so a file written to while it is read is keyed on what was read, and a
// warm run, which hashes the file as it is, finds only a cache made of
// those very bytes. Everything else that decides what the records give
// is in the key: the kind each file is read as, the format options
// (data.format, data.shape and its fields, data.skip_bad, the record
// limit, the text mode) and format.ReadVersion. Files read where their
// reader needs (parquet) cannot be hashed as parsed: such a subject's
// cache is keyed on its examples as before.

// digest hashes the bytes a reader reads (format.Options.Digest) and
// counts them.
type digest struct {
	h hash.Hash
	n int64
}

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return d.h.Write(p)
}

// file is what was read of path: its size and sha256.
func (d *digest) file(path string) track.FileHash {
	return track.FileHash{Path: path, Size: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil))}
}

// streamed says whether path, read as kind ("": by its extension), is
// read in order, so that the bytes parsed can be hashed as they are read.
func streamed(path string, kind format.Kind) bool {
	if kind == "" {
		k, err := format.KindOf(path)
		if err != nil {
			return false
		}
		kind = k
	}
	return kind != format.KindParquet
}

// filesKey is a file subject's token cache data key: the bytes of its
// files (what reads holds of each, in order) and how they are read.
func filesKey(files []string, fo format.Options, reads []track.FileHash) prep.Hash {
	fo.Digest = nil
	parts := [][]byte{[]byte(fmt.Sprintf("data files, read version %d", format.ReadVersion)), []byte(fmt.Sprintf("%#v", fo))}
	for i, f := range files {
		kind := fo.Kind
		if kind == "" {
			kind, _ = format.KindOf(f)
		}
		parts = append(parts, []byte(kind), []byte(reads[i].SHA256))
	}
	return prep.HashBytes(parts...)
}

// readFiles reads a file subject's files in order as its training
// examples, saying on log what each held. data is its token cache's data
// key: of the bytes read where every file is read in order, else of the
// examples. reads are the files as read (nil when not every file is read
// in order).
//
// Of several files, one without an example (empty, blank, or all its
// records skipped as bad under data.skip_bad) is left out, saying so: a
// folder of documents is one subject, and with one example per document
// an empty stub or an undecodable page would otherwise stop the run, and
// skip_bad could never skip a document. The subject fails only when no
// file has an example. One file given alone that holds none stays an
// error: there is nothing to train on. A left-out file is still among
// reads and in data, as read: the key is of the files' bytes, so editing
// it (filling the stub in) makes the cache stale as editing any file does.
func readFiles(ctx context.Context, files []string, fo format.Options, log io.Writer) (exs []format.Example, data prep.Hash, reads []track.FileHash, err error) {
	hashed := true
	for _, f := range files {
		hashed = hashed && streamed(f, fo.Kind)
	}
	left, skipped := 0, 0 // files left out, and their records skipped as bad
	for _, f := range files {
		o := fo
		var d *digest
		if hashed {
			d = newDigest()
			o.Digest = d
		}
		r, err := format.Open(f, o)
		if err != nil {
			return nil, prep.Hash{}, nil, err
		}
		n := 0
		for {
			if err := ctx.Err(); err != nil {
				r.Close()
				return nil, prep.Hash{}, nil, fmt.Errorf("%s: reading interrupted: %w", f, err)
			}
			ex, err := r.Next()
			if err == io.EOF {
				break
			}
			if errors.Is(err, format.ErrEmptyDataset) && len(files) > 1 {
				break // at the file's end, having read it all: left out below
			}
			if err != nil {
				r.Close()
				return nil, prep.Hash{}, nil, err // a *format.PosError names the file and line
			}
			exs = append(exs, ex)
			n++
		}
		r.Close()
		if d != nil {
			reads = append(reads, d.file(f))
		}
		kind := fo.Kind
		if kind == "" {
			kind, _ = format.KindOf(f)
		}
		rep := r.Report()
		if n == 0 {
			SayHowRead(log, rep)
			size := int64(-1)
			if d != nil {
				size = d.n
			} else if st, err := os.Stat(f); err == nil {
				size = st.Size()
			}
			fmt.Fprintf(log, "data: %s: no example (%s): left out\n", f, noExample(kind, rep, size))
			left++
			skipped += rep.Skipped
			continue
		}
		how := "detected"
		if fo.Mapping.Shape != format.ShapeAuto {
			how = "data.shape"
		}
		fmt.Fprintf(log, "data: %s: %s, shape %v (%s), %d examples\n", f, kind, r.Mapping().Shape, how, n)
		SayHowRead(log, rep)
	}
	if left == len(files) {
		msg := fmt.Sprintf("no examples in any of the %d files", len(files))
		if skipped > 0 {
			msg = fmt.Sprintf("no valid examples in any of the %d files (%d bad records skipped)", len(files), skipped)
		}
		return nil, prep.Hash{}, nil, fmt.Errorf("%s: %w: %s", namesOf(files, 5), format.ErrEmptyDataset, msg)
	}
	if !hashed {
		return exs, prep.HashExamples(exs), nil, nil
	}
	return exs, filesKey(files, fo, reads), reads, nil
}

// noExample says why a file of size bytes (-1: unknown), read as kind,
// gave no example (rep).
func noExample(kind format.Kind, rep format.Report, size int64) string {
	switch {
	case rep.Skipped == 1:
		return "its one record skipped as bad"
	case rep.Skipped > 1:
		return fmt.Sprintf("its %d records skipped as bad", rep.Skipped)
	case size == 0:
		return "empty"
	}
	if kind == format.KindText {
		return "blank"
	}
	return "no record"
}

// namesOf names files, the first max of them and how many others: a
// folder of documents may hold hundreds.
func namesOf(files []string, max int) string {
	if len(files) <= max {
		return filesWhere(files)
	}
	return fmt.Sprintf("%s and %d other files", filesWhere(files[:max]), len(files)-max)
}

// hashFiles is the data key readFiles would give for the files as they
// are now, without reading a record; ok is false where the key is of the
// examples (a file not read in order).
func hashFiles(files []string, fo format.Options) (data prep.Hash, reads []track.FileHash, ok bool, err error) {
	for _, f := range files {
		if !streamed(f, fo.Kind) {
			return prep.Hash{}, nil, false, nil
		}
	}
	for _, f := range files {
		fh, _, err := fsutil.OpenRegular(f)
		if err != nil {
			return prep.Hash{}, nil, false, err
		}
		d := newDigest()
		_, err = io.Copy(d, fh)
		fh.Close()
		if err != nil {
			return prep.Hash{}, nil, false, fmt.Errorf("hash %s: %w", f, err)
		}
		reads = append(reads, d.file(f))
	}
	return filesKey(files, fo, reads), reads, true, nil
}

// ReadDataFiles reads a file subject's data files (a DataInput without a
// Folder) as a run reads them, with the data key of its token cache
// (prep.CacheKey.Data): the bytes read, and how they were read. log (nil:
// nothing) hears what a run says as it reads them: each file's kind,
// shape and examples, and the malformed records skipped (SayHowRead).
func ReadDataFiles(ctx context.Context, in DataInput, log io.Writer) ([]format.Example, prep.Hash, error) {
	if log == nil {
		log = io.Discard
	}
	exs, data, _, err := readFiles(ctx, in.Files, in.Format, log)
	if err != nil {
		return nil, prep.Hash{}, fmt.Errorf("subject %s: %w", in.Name, err)
	}
	return exs, data, nil
}

// HashDataFiles is the data key ReadDataFiles would give for the files as
// they are now, without reading a record: a cache found under it was made
// of these very bytes. ok is false where the key is of the examples read
// (a parquet file): then only ReadDataFiles gives it.
func HashDataFiles(in DataInput) (data prep.Hash, ok bool, err error) {
	data, _, ok, err = hashFiles(in.Files, in.Format)
	return data, ok, err
}

// cachePath is where a subject's split is cached under the token cache
// folder dir: variant (non-empty when the examples differ from the
// split's file: changed by augmentation) gets its own file.
func cachePath(dir, name string, split subject.Split, variant string) string {
	file := string(split) + ".tokens"
	if variant != "" {
		file = string(split) + "." + prep.HashString(variant).String() + ".tokens"
	}
	return filepath.Join(dir, name, file)
}

// warmFiles opens the up-to-date token cache of a file subject's
// training files, hashing the files but reading no record, or returns nil
// (no cache folder, no cache yet, a stale one: the files are read, and
// tokenized rebuilds it saying why). It serves when what the run makes of
// the training file is the file as read: no skipped records to say
// (data.skip_bad) and no deduplication (data.augment.dedup).
func warmFiles(o Options, src *source, fo format.Options, tp Text) (*prep.Cache, prep.Hash, []track.FileHash, error) {
	if o.TokenCache == "" || o.SkipBad || o.Dedup > 0 {
		return nil, prep.Hash{}, nil, nil
	}
	path := cachePath(o.TokenCache, src.name, subject.Train, "")
	if _, err := os.Stat(path); err != nil {
		return nil, prep.Hash{}, nil, nil
	}
	data, reads, ok, err := hashFiles(src.files, fo)
	if err != nil || !ok {
		return nil, prep.Hash{}, nil, err
	}
	c, err := prep.OpenCache(path, cacheKey(tp, subjectPreprocessor(o, tp, 0), data))
	if err != nil {
		if errors.Is(err, prep.ErrCacheStale) || errors.Is(err, prep.ErrCacheCorrupt) || errors.Is(err, os.ErrNotExist) {
			return nil, prep.Hash{}, nil, nil
		}
		return nil, prep.Hash{}, nil, err
	}
	return c, data, reads, nil
}

// cacheKey is what a token cache of data tokenised by p must match.
func cacheKey(tp Text, p *prep.Preprocessor, data prep.Hash) prep.CacheKey {
	return prep.CacheKey{Tokenizer: tp.TokenizerHash, Template: tp.TemplateHash, Options: prep.OptionsHash(p.Opts, p.EOS), Data: data}
}

// subjectPreprocessor is how a run tokenises a subject rendered with tp:
// up to the sequence length (long plain text kept whole, to be split),
// prompts learnt with data.train_on_inputs, maxPositions the model's
// positions (0: unchecked).
func subjectPreprocessor(o Options, tp Text, maxPositions int) *prep.Preprocessor {
	p := tp.preprocessor(o.SeqLen)
	p.Opts.MaxPositions = maxPositions
	o.SetTokenizing(p)
	if o.SkipBad {
		p.SkipBad = BadRecord
	}
	return p
}

// filesWhere names a subject's files for the log.
func filesWhere(files []string) string { return strings.Join(files, ", ") }
