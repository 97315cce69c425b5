package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// Kind is a file format.
type Kind string

const (
	KindJSONL   Kind = "jsonl"
	KindJSON    Kind = "json" // a JSON array of objects, an object holding one, or one object
	KindCSV     Kind = "csv"
	KindTSV     Kind = "tsv"
	KindText    Kind = "text"
	KindParquet Kind = "parquet"
)

// KindOf picks the format from a file extension; a .json file whose
// first line is a JSON object with another object on a later line (what
// datasets' Dataset.to_json writes by default) is JSON Lines, its first
// bytes looked at (at most 8 MiB; a path that cannot be read is json).
func KindOf(path string) (Kind, error) {
	k, err := kindOfName(path)
	if k == KindJSON && jsonLinesFile(path) {
		return KindJSONL, nil
	}
	return k, err
}

// kindOfName is the format path's extension names, its bytes unread.
func kindOfName(path string) (Kind, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return KindJSONL, nil
	case ".json":
		return KindJSON, nil
	case ".csv":
		return KindCSV, nil
	case ".tsv", ".tab":
		return KindTSV, nil
	case ".txt", ".text", ".md", ".markdown":
		return KindText, nil
	case ".parquet":
		return KindParquet, nil
	}
	// A file of a readable format under another extension (.mdx, .log)
	// is read once its format is named, which the message says, rather
	// than leaving the user to rename it.
	return "", fmt.Errorf("%s: %w file extension %q (want .jsonl, .ndjson, .json, .csv, .tsv, .tab, .txt, .text, .md, .markdown or .parquet; data.format, e.g. --set data.format=text, reads a file as that format whatever its extension)", path, ErrUnsupported, filepath.Ext(path))
}

// TextMode says how a plain-text file is cut into completion examples.
type TextMode int

const (
	// TextAuto cuts by the file's extension: a Markdown file (.md,
	// .markdown) is one document, whose lines make sense only together
	// (a heading, a list, a code block), so it is one example; other text
	// files (.txt, .text) hold one example per line.
	TextAuto       TextMode = iota
	TextLines               // one example per non-blank line
	TextParagraphs          // examples separated by blank lines
	TextWhole               // the whole file is one example (at most Options.MaxRecordBytes)
)

// ParseTextMode reads data.text_unit's names: auto, line, paragraph, file.
func ParseTextMode(s string) (TextMode, error) {
	switch s {
	case "", "auto":
		return TextAuto, nil
	case "line":
		return TextLines, nil
	case "paragraph":
		return TextParagraphs, nil
	case "file":
		return TextWhole, nil
	}
	return TextAuto, fmt.Errorf("%q (want auto, line, paragraph or file)", s)
}

// textModeFor is the mode a text file named name is read in.
func textModeFor(name string, m TextMode) TextMode {
	if m != TextAuto {
		return m
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".markdown":
		return TextWhole
	}
	return TextLines
}

// Options control a Reader. The zero value auto-detects format and shape
// and stops at the first bad record.
type Options struct {
	Kind    Kind // "" picks it from the extension
	Mapping Mapping
	// Skip makes bad records (malformed, missing column, invalid UTF-8,
	// unknown role) be counted in the Report instead of stopping the read.
	// Errors that leave the rest of the file unreadable (a broken JSON
	// array, a corrupt parquet file, I/O) still stop it.
	Skip bool
	// MaxSkipMessages bounds Report.SkipErrors (default 20).
	MaxSkipMessages int
	Text            TextMode
	// MaxRecordBytes bounds one record of a streamed format (a JSONL line,
	// an element of a JSON array, a CSV record, a text unit; 0:
	// DefaultMaxRecordBytes). Readers hold a record whole, so without a
	// bound one file without a newline would be read into memory whole.
	// Parquet has its own bounds.
	MaxRecordBytes int64
	// Digest, when set, is written every byte read from the file, as the
	// reader reads it: once the reader has returned io.EOF, a hash there
	// is of the bytes the examples were read from, however the file
	// changed on disk meanwhile. Streamed kinds only: Open refuses it for
	// a file kind (parquet), which is read where its reader needs.
	Digest io.Writer
}

// ReadVersion names how this ftune reads records into examples. Token
// caches keyed on a data file's bytes (and the Options it is read with)
// include it, so it must change whenever the same bytes and Options would
// give other examples (a shape read otherwise, a field newly read); a
// change that only refuses more or other records needs none. 2: a
// message's "weight" is read (0: not learnt); records with prompt,
// completion and label are unpaired preferences. 3: a prompt/completion
// pair's prompt may be a list of messages (a CSV cell's JSON list
// included), read as a conversation. 4: tool calling: messages' tool
// calls (tool_calls, function_call, LLaMA-Factory's function_call turns),
// tool results (roles tool, function, ipython, observation; tool_call_id
// and name) and a record's tools (or, on chat records, functions) are
// read, where tools and function_call turns were dropped or refused.
// 5: a Markdown file is one example by default (Options.Text TextAuto),
// where each line was one; in text files CRLF is read as LF in every
// TextMode (a paragraph or whole file kept the CR); and under
// Options.Skip a paragraph or file with a line that is not UTF-8 is
// skipped whole (the lines after that one were read as an example).
// 6: other tools' layouts: a preference record's instruction and input
// (LLaMA-Factory) or question (Axolotl's chatml.intel) are its prompt, a
// conversation, where the completions' shared beginning was; a kto_tag
// makes a record unpaired feedback (it was supervised); an alpaca
// record's history is its earlier turns (it was dropped); a message's
// "train" is read as its weight is.
// 7: a preference record's conversation ("conversations", or "messages"
// beside completions that are not lists) is its prompt when it has no
// prompt field (LLaMA-Factory's ShareGPT ranking data; the completions'
// shared beginning was, and the conversation was dropped); tools listed
// bare beside such a conversation (its ranking and KTO data) are wrapped
// as ShareGPT records' are. (Newly read, where they were refused: a .json
// file of JSON Lines, a JSON object holding a list of records or being
// one; refused, where they were read as text: numbers and booleans in
// text fields.)
// 8: other tools' chat data, refused before (and so left out of a file
// read with Options.Skip, which now gives more examples): a message's
// content as a list of text parts (OpenAI's), roles developer (read as
// system), chatgpt, bing and bard (ShareGPT's, assistant) and prompter
// (OpenAssistant's, user).
const ReadVersion = 8

// DefaultMaxRecordBytes is Options.MaxRecordBytes's default: far above
// any training example (131,072 tokens of text are about 0.5 MiB).
const DefaultMaxRecordBytes = 64 << 20

// recordLimit fails reads once more than max bytes have been read since
// the Reader last returned a record. The sources read ahead by at most
// their buffer (64 KiB), so a record is refused between max minus that and
// max plus one read.
type recordLimit struct {
	r       io.Reader
	max, n  int64
	tripped bool
	// whole: a text file read whole as one example (TextWhole), where a
	// record past the limit is a long document rather than a file of
	// another format.
	whole bool
}

func (l *recordLimit) Read(p []byte) (int, error) {
	if l.n > l.max {
		l.tripped = true
		return 0, fmt.Errorf("%w: %s", ErrRecordTooLarge, l.message())
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	return k, err
}

func (l *recordLimit) message() string {
	if l.whole {
		return fmt.Sprintf("the document runs past %d bytes, the most ftune reads as one example (Options.MaxRecordBytes): a text file is read whole as one example (data.text_unit file, the default for Markdown); data.text_unit paragraph or line cuts it into smaller examples", l.max)
	}
	return fmt.Sprintf("a record runs past %d bytes, the most ftune reads as one example (Options.MaxRecordBytes); is the file the format its extension says?", l.max)
}

// refuse turns the error a source made of a refused read into one with
// the ErrRecordTooLarge sentinel and the limit's message, keeping the
// position the source gave.
func (l *recordLimit) refuse(name string, err error) error {
	pe := &PosError{File: name, Msg: l.message(), Err: ErrRecordTooLarge}
	var src *PosError
	if errors.As(err, &src) {
		pe.File, pe.Line, pe.Column, pe.Row = src.File, src.Line, src.Column, src.Row
	}
	return pe
}

func (l *recordLimit) next() { l.n = 0 }

// Report counts what a read saw.
type Report struct {
	File       string
	Records    int      // records seen, good and bad
	Examples   int      // examples returned
	Skipped    int      // bad records skipped (Options.Skip)
	SkipErrors []string // the first MaxSkipMessages skip reasons
	// Notes say how the file was read where its name does not tell: a
	// .json file read as JSON Lines, the key of an object whose list of
	// records was read and the members beside it that were not; for the
	// caller to say beside the file's counts.
	Notes []string
}

// Record is one raw record before shape conversion.
type Record struct {
	Fields map[string]any
	Line   int // 1-based line; 0 in formats without lines (parquet)
	Column int // 1-based byte column of the record's start, 0 if unknown
	Row    int // 1-based record number where there is no Line (parquet)
	// raw is the record's JSON text, where the JSON readers have it:
	// tool calls' arguments and tools keep their key order from it.
	raw []byte
}

// source yields records. A returned error is a *PosError; fatal reports
// whether reading can continue after it.
type source interface {
	next() (rec Record, err error, fatal bool)
	close() error
}

// Reader streams normalised examples from one file.
type Reader struct {
	name    string
	src     source
	limit   *recordLimit // nil for file sources (parquet)
	opts    Options
	mapping Mapping
	mapped  bool
	// detected: the mapping is the first record's detected shape, which
	// every later record is checked against; first is that record's
	// place ("line 1", "row 1").
	detected bool
	first    string
	report   Report
	notes    []string // how the file was read (Report.Notes), beside the source's
	// said: the records' read notes (Mapping.said) in notes already.
	said map[string]bool
	done bool
}

// recordNotes are what reading a record took otherwise than written (a
// role read under another name, content parts joined), each once.
type recordNotes []string

// add notes what reading took otherwise; nil collects nothing.
func (n *recordNotes) add(note string) {
	if n != nil && note != "" && !slices.Contains(*n, note) {
		*n = append(*n, note)
	}
}

// Open opens a dataset file for streaming.
func Open(path string, opts Options) (*Reader, error) {
	kind := opts.Kind
	if kind == "" {
		k, err := kindOfName(path)
		if err != nil {
			return nil, err
		}
		kind = k
	}
	openFile, byFile := fileOpener(kind)
	if pkg, ok := kindPackages[kind]; ok && !byFile {
		return nil, fmt.Errorf("%s: %w: %s files need %s, which this program does not import (import _ %q)", path, ErrUnsupported, kind, pkg, pkg)
	}
	// A data file may come from anywhere: a named pipe nobody writes
	// would block the open forever, past any Ctrl-C.
	f, _, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	if !byFile {
		if c := compression(f); c != "" {
			f.Close()
			return nil, fmt.Errorf("%s: %w: the file is %s-compressed, and %s is read as plain text: decompress it first", path, ErrUnsupported, c, kind)
		}
	}
	var notes []string
	if opts.Kind == "" && kind == KindJSON && jsonLinesOpen(f) {
		// Told from the open file, so that it is the file read.
		kind, notes = KindJSONL, []string{jsonLinesNote}
	}
	if byFile && opts.Digest != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: a digest of the bytes read (Options.Digest) needs a file read in order; %s files are read where their reader needs", path, ErrUnsupported, kind)
	}
	var src source
	var lim *recordLimit
	if byFile {
		var fs FileSource
		if fs, err = openFile(f, path); err == nil {
			src = fileSource{fs}
		}
	} else {
		src, lim, err = newStreamSource(f, path, kind, opts)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	r := newReader(path, src, lim, opts)
	r.notes = notes
	return r, nil
}

// compressions are the leading bytes of compressed files (none valid
// UTF-8 text), which read as text fail on their first byte with a message
// that says nothing of compression.
var compressions = []struct{ magic, name string }{
	{"\x1f\x8b", "gzip"},
	{"\x28\xb5\x2f\xfd", "zstd"},
	{"\xfd7zXZ\x00", "xz"},
	{"PK\x03\x04", "zip"},
}

// compression names the compression f's first bytes announce, or "" (also
// when f cannot be read at an offset: a pipe is not probed).
func compression(f *os.File) string {
	head := make([]byte, 10)
	n, _ := f.ReadAt(head, 0)
	h := string(head[:n])
	for _, c := range compressions {
		if strings.HasPrefix(h, c.magic) {
			return c.name
		}
	}
	// bzip2: "BZh", the block size digit, then the block magic (π's
	// digits), which no text begins with by chance.
	if len(h) == 10 && strings.HasPrefix(h, "BZh") && h[3] >= '1' && h[3] <= '9' && h[4:] == "\x31\x41\x59\x26\x53\x59" {
		return "bzip2"
	}
	return ""
}

// NewReader streams examples from r; name is used in positions. Parquet
// needs random access: use Open for it.
func NewReader(r io.Reader, name string, kind Kind, opts Options) (*Reader, error) {
	if _, byFile := fileOpener(kind); byFile || kindPackages[kind] != "" {
		return nil, fmt.Errorf("%s: %w: %s needs a file (use Open)", name, ErrUnsupported, kind)
	}
	src, lim, err := newStreamSource(io.NopCloser(r), name, kind, opts)
	if err != nil {
		return nil, err
	}
	return newReader(name, src, lim, opts), nil
}

// limitedReadCloser reads through a recordLimit and closes the file.
type limitedReadCloser struct {
	*recordLimit
	io.Closer
}

func newStreamSource(rc io.ReadCloser, name string, kind Kind, opts Options) (source, *recordLimit, error) {
	max := opts.MaxRecordBytes
	if max <= 0 {
		max = DefaultMaxRecordBytes
	}
	var r io.Reader = rc
	if opts.Digest != nil {
		r = io.TeeReader(rc, opts.Digest)
	}
	lim := &recordLimit{r: r, max: max, whole: kind == KindText && textModeFor(name, opts.Text) == TextWhole}
	lrc := limitedReadCloser{lim, rc}
	var src source
	var err error
	switch kind {
	case KindJSONL:
		src = newJSONLSource(lrc, name)
	case KindJSON:
		src = newJSONSource(lrc, name, opts.Mapping, lim)
	case KindCSV:
		src, err = newCSVSource(lrc, name, ',')
	case KindTSV:
		src, err = newCSVSource(lrc, name, '\t')
	case KindText:
		src = newTextSource(lrc, name, textModeFor(name, opts.Text))
	default:
		return nil, nil, fmt.Errorf("%s: %w format %q", name, ErrUnsupported, kind)
	}
	if err != nil && lim.tripped { // a CSV header past the limit
		err = lim.refuse(name, err)
	}
	return src, lim, err
}

func newReader(name string, src source, lim *recordLimit, opts Options) *Reader {
	if opts.MaxSkipMessages == 0 {
		opts.MaxSkipMessages = 20
	}
	r := &Reader{name: name, src: src, limit: lim, opts: opts, report: Report{File: name}}
	if opts.Mapping.Shape != ShapeAuto {
		r.mapping = opts.Mapping.withDefaults()
		r.mapped = true
	}
	return r
}

// Next returns the next example, io.EOF after the last one, or an error
// (a *PosError for a bad record). A file without any example gives
// ErrEmptyDataset instead of io.EOF.
func (r *Reader) Next() (Example, error) {
	if r.done {
		return Example{}, io.EOF
	}
	for {
		rec, err, fatal := r.src.next()
		if r.limit != nil {
			if r.limit.tripped && err != nil && err != io.EOF {
				// However the source worded the failed read, the record is
				// too large, and the rest of the file cannot be trusted to
				// resume at a record boundary.
				err, fatal = r.limit.refuse(r.name, err), true
			}
			r.limit.next()
		}
		if err == io.EOF {
			r.done = true
			if r.report.Examples == 0 {
				msg := "no examples"
				if r.report.Skipped > 0 {
					msg = fmt.Sprintf("no valid examples (%d bad records skipped)", r.report.Skipped)
				}
				return Example{}, fmt.Errorf("%s: %w: %s", r.name, ErrEmptyDataset, msg)
			}
			return Example{}, io.EOF
		}
		if err == nil {
			r.report.Records++
			var ex Example
			ex, err = r.convert(rec)
			if err == nil {
				r.report.Examples++
				return ex, nil
			}
		} else if !fatal {
			r.report.Records++
		}
		if fatal || !r.opts.Skip {
			r.done = true
			return Example{}, err
		}
		r.report.Skipped++
		if len(r.report.SkipErrors) < r.opts.MaxSkipMessages {
			r.report.SkipErrors = append(r.report.SkipErrors, err.Error())
		}
	}
}

func (r *Reader) convert(rec Record) (Example, error) {
	pos := func(err error) error {
		pe := &PosError{File: r.name, Line: rec.Line, Column: rec.Column, Row: rec.Row, Msg: err.Error()}
		for _, s := range []error{ErrMissingColumn, ErrInvalidUTF8, ErrUnknownRole, ErrBadValue, ErrUnsupported, ErrRecordTooLarge} {
			if errors.Is(err, s) {
				pe.Err = s
				break
			}
		}
		return pe
	}
	if !r.mapped {
		// The first record fixes the shape for the whole file, so a later
		// record that lacks a field is reported as missing rather than
		// silently read as another shape.
		m, err := Detect(rec.Fields)
		if err != nil {
			return Example{}, pos(err)
		}
		r.mapping, r.mapped, r.detected = m, true, true
		r.first = place(rec)
	}
	if r.detected {
		// A record with fields the first record's shape does not read
		// (an "instruction" in a file of input/output pairs) is another
		// layout: reading it as the first would drop them silently. It is
		// said before what else is wrong with it as that shape.
		if cols := r.mapping.ignoredColumns(rec.Fields); len(cols) > 0 {
			return Example{}, pos(r.ignored(rec.Fields, cols))
		}
	}
	var raw rawJSON
	if rec.raw != nil {
		raw = rawText(rec.raw)
	}
	m, said := r.mapping, recordNotes(nil)
	m.said = &said
	ex, err := m.toExample(rec.Fields, raw)
	if errors.Is(err, ErrMissingColumn) {
		// Say where the shape that wants the column came from.
		origin := fmt.Sprintf("the file's shape, %v, is set by data.shape or a column mapping", r.mapping.Shape)
		if r.detected {
			origin = fmt.Sprintf("the file's shape, %v, was detected from its first record (%s)", r.mapping.Shape, r.first)
		}
		err = fmt.Errorf("%w: %s", err, origin)
	}
	if err != nil {
		return Example{}, pos(err)
	}
	if r.detected {
		// A shape set by hand reads the columns it names and no others,
		// as the user chose; one guessed from field names must not drop
		// text the guess does not read (a question's context).
		if cols := r.mapping.unreadText(rec.Fields); len(cols) > 0 {
			return Example{}, pos(r.unread(cols))
		}
	}
	ex.Source = r.name + Position(rec.Line, rec.Row)
	// Said once a file, where first read: a record that is refused or
	// skipped has none of its notes said, as it is not read.
	for _, n := range said {
		if !r.said[n] {
			if r.said == nil {
				r.said = map[string]bool{}
			}
			r.said[n] = true
			r.notes = append(r.notes, fmt.Sprintf("%s (first on %s)", n, place(rec)))
		}
	}
	return ex, nil
}

// place names rec's place in its file in messages: "line 3", or "row 3"
// in formats without lines (parquet).
func place(rec Record) string {
	if rec.Line == 0 {
		return fmt.Sprintf("row %d", rec.Row)
	}
	return fmt.Sprintf("line %d", rec.Line)
}

// unread is the error of a record whose fields cols hold text that the
// detected mapping reads nowhere (Mapping.unreadText), with the ways out.
func (r *Reader) unread(cols []string) error {
	m := r.mapping
	what := fmt.Sprintf("field %q holds", cols[0])
	switch {
	case len(cols) > 8: // a message, not a listing of a record's keys
		what = fmt.Sprintf("fields %s and %d more hold", strings.Join(quoteEach(cols[:8]), ", "), len(cols)-8)
	case len(cols) > 1:
		what = fmt.Sprintf("fields %s hold", quoteList(cols))
	}
	example := `data.columns names the record's field for each column the shape reads: README, "Your own data"`
	if m.Shape == ShapeInputOutput {
		// Alpaca's input is the usual home of a question's context.
		example = fmt.Sprintf("data.shape alpaca with data.columns {instruction: %s, input: %s, output: %s} reads all three", m.Prompt, cols[0], m.Response)
	}
	return fmt.Errorf("%w: %s text that the file's shape, %v (detected from its first record, %s), does not read: it reads %s, and training would drop the rest. Map the text to a field the shape reads with data.shape and data.columns (in a subject folder: subject.yaml's shape and columns) (%s), or remove it from the records; metadata (ids, sources, categories, languages, URLs, scores...) is kept silently", ErrBadValue, what, m.Shape, r.first, quoteList(m.columns()), example)
}

// ignored is the error of a record whose fields cols the detected mapping
// would ignore (Mapping.ignoredColumns), saying which layout the record
// is and where the file's came from.
func (r *Reader) ignored(f map[string]any, cols []string) error {
	m := r.mapping
	own, err := Detect(f)
	switch {
	case m.Shape == ShapeUnpairedPreference && (err != nil || own.Shape == m.Shape):
		// Fields of another layout beside an unpaired record's.
		return fmt.Errorf("%w: fields %q would be ignored: the file's shape, %v (detected from its first record, %s), reads %s only; give one layout per record, or set data.shape and data.columns", ErrBadValue, cols, m.Shape, r.first, quoteList(slices.DeleteFunc(m.columns(), func(c string) bool { return c == m.Tools })))
	case own.Shape == ShapeUnpairedPreference && m.Shape == ShapeInputOutput && m.Response == own.Completion:
		// Feedback whose first record lacks its label.
		return fmt.Errorf("%w: fields %q would be ignored: this record is unpaired feedback (shape %v), and the file's shape is %v (supervised prompt/completion pairs), detected from its first record, %s, which has %q and %q and no %q: give every record its %q (true or false), or none", ErrBadValue, cols, own.Shape, m.Shape, r.first, m.Prompt, m.Response, own.Label, own.Label)
	}
	if err == nil && own.Shape == m.Shape {
		// The same shape under other field names (prompt/response after
		// prompt/completion).
		return fmt.Errorf("%w: fields %q would be ignored: the file's shape, %v, was detected from its first record, %s, with the fields %q, and this record names its parts otherwise; give one layout per file, or set data.shape and data.columns", ErrBadValue, cols, m.Shape, r.first, m.columns())
	}
	return fmt.Errorf("%w: fields %q would be ignored: this record is shape %v, the file's shape is %v (detected from its first record, %s); give one layout per file, or set data.shape and data.columns", ErrBadValue, cols, own.Shape, m.Shape, r.first)
}

// Mapping returns the mapping in use (detected after the first record).
func (r *Reader) Mapping() Mapping { return r.mapping }

// Report returns the counts so far, and the notes on how the file is
// read.
func (r *Reader) Report() Report {
	rep := r.report
	rep.Notes = slices.Clone(r.notes)
	if n, ok := r.src.(noter); ok {
		rep.Notes = append(rep.Notes, n.notes()...)
	}
	return rep
}

// noter is a source with notes on how it reads its file (Report.Notes).
type noter interface{ notes() []string }

// Close releases the file.
func (r *Reader) Close() error { return r.src.close() }

// ReadAll reads a whole file. For files larger than memory, use Open and
// Next instead.
func ReadAll(path string, opts Options) ([]Example, Report, error) {
	return ReadAllContext(context.Background(), path, opts)
}

// ReadAllContext is ReadAll stopping, with ctx's error, once ctx is done.
func ReadAllContext(ctx context.Context, path string, opts Options) ([]Example, Report, error) {
	r, err := Open(path, opts)
	if err != nil {
		return nil, Report{File: path}, err
	}
	defer r.Close()
	var out []Example
	for {
		if err := ctx.Err(); err != nil {
			return out, r.Report(), fmt.Errorf("%s: reading interrupted: %w", path, err)
		}
		ex, err := r.Next()
		if err == io.EOF {
			return out, r.Report(), nil
		}
		if err != nil {
			return out, r.Report(), err
		}
		out = append(out, ex)
	}
}
