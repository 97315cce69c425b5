package format

import (
	"bufio"
	"io"
	"os"

	"github.com/ftune/ftune/internal/fsutil"
)

// A .json file is JSON (an array of records, or an object holding them)
// or JSON Lines under that name: datasets' Dataset.to_json writes JSON
// Lines by default (lines=True), and its users name the file data.json.
// Which one is told from the file's first line, so that neither is
// refused for its extension.

// jsonLinesLookahead bounds how far into a .json file the first value is
// looked for: a first line longer than that (a record over 8 MiB, or one
// large JSON document) leaves the file JSON, whose reader then names what
// follows its first value (data.format jsonl reads it as JSON Lines).
var jsonLinesLookahead int64 = 8 << 20

// jsonLinesNote is the Report's note on a .json file read as JSON Lines.
const jsonLinesNote = "read as JSON Lines: the .json file holds one JSON object per line (as datasets' Dataset.to_json writes by default), not one JSON document"

// jsonLinesFile says whether the .json file at path is JSON Lines
// (jsonLines); false where it cannot be read, or is not a regular file (a
// pipe read here would be consumed).
func jsonLinesFile(path string) bool {
	f, _, err := fsutil.OpenRegular(path) // never waits on a pipe
	if err != nil {
		return false
	}
	defer f.Close()
	return jsonLinesOpen(f)
}

// jsonLinesOpen is jsonLinesFile on an open file, read from its start
// with ReadAt: its offset stays where it is.
func jsonLinesOpen(f *os.File) bool {
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return false
	}
	return jsonLines(io.NewSectionReader(f, 0, jsonLinesLookahead))
}

// jsonLines says whether r begins as JSON Lines: an object that ends on
// its first line (a BOM and blank lines before it aside), then, after
// blanks and at least one line end, another object. One object alone is
// JSON (one record, or an object holding them); so are objects that span
// lines (pretty-printed, concatenated), which are not JSON Lines; and
// anything that does not start with '{'. Only the syntax that finds the
// first object's end is followed (strings, escapes, nesting): whether the
// lines are valid JSON is the JSONL reader's to say, with their line.
func jsonLines(r io.Reader) bool {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	c, err := skipBlanks(br, true)
	if err != nil || c != '{' {
		return false
	}
	depth, inString, escaped := 1, false, false
	for depth > 0 {
		c, err := br.ReadByte()
		switch {
		case err != nil || c == '\n':
			// The end of the lookahead, or a line end inside the first
			// value (not JSON Lines; in a string, not JSON).
			return false
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	c, err = skipBlanks(br, false)
	if err != nil || c != '\n' {
		return false // one value, or more on its line (malformed either way)
	}
	c, err = skipBlanks(br, true)
	return err == nil && c == '{'
}

// skipBlanks reads past spaces, tabs and CRs (and line ends, when lines)
// and returns the first other byte.
func skipBlanks(br *bufio.Reader, lines bool) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' && lines {
			continue
		}
		return c, nil
	}
}
