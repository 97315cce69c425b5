package format

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// readTexts reads content as file name in mode, returning the examples'
// texts and the read's end (io.EOF when it ended cleanly).
func readTexts(t *testing.T, name, content string, opts Options) ([]string, Report, error) {
	t.Helper()
	r, err := NewReader(strings.NewReader(content), name, KindText, opts)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for {
		ex, err := r.Next()
		if err != nil {
			return texts, r.Report(), err
		}
		texts = append(texts, ex.Text)
	}
}

// TestTextCRLF: a text file with CRLF line ends (written on Windows)
// gives the examples of the same file with LF ends in every mode, as
// Python's text mode reads it: a paragraph or whole document kept the CR
// before each newline, which the model then learnt.
func TestTextCRLF(t *testing.T) {
	lf := "# Title\n\nFirst paragraph,\nits second line.\n\n\nSecond paragraph.\n"
	tests := []struct {
		name, file string
		mode       TextMode
	}{
		{"lines", "a.txt", TextLines},
		{"paragraphs", "a.txt", TextParagraphs},
		{"whole", "a.txt", TextWhole},
		{"markdown by default", "a.md", TextAuto},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			want, _, err := readTexts(t, c.file, lf, Options{Text: c.mode})
			if err != io.EOF || len(want) == 0 {
				t.Fatalf("LF file: %q, %v", want, err)
			}
			for _, crlf := range []string{
				strings.ReplaceAll(lf, "\n", "\r\n"),
				"\ufeff" + strings.ReplaceAll(lf, "\n", "\r\n"),
				strings.TrimSuffix(strings.ReplaceAll(lf, "\n", "\r\n"), "\n"), // a CR last, without its LF
			} {
				got, _, err := readTexts(t, c.file, crlf, Options{Text: c.mode})
				if err != io.EOF || !reflect.DeepEqual(got, want) {
					t.Errorf("CRLF file %q: %q, %v; want %q as with LF", crlf, got, err, want)
				}
			}
		})
	}
	// A CR that does not end a line is the text's own.
	got, _, _ := readTexts(t, "a.md", "50%\r100%\r\nend\r\n", Options{})
	if want := []string{"50%\r100%\nend"}; !reflect.DeepEqual(got, want) {
		t.Errorf("a CR inside a line: %q, want %q", got, want)
	}
}

// TestTextBadUTF8SkipsTheUnit: under Options.Skip, a line that is not
// UTF-8 skips the paragraph or document it is in, whole: before, the
// lines before it were dropped and the rest read on as an example, a
// document cut in two.
func TestTextBadUTF8SkipsTheUnit(t *testing.T) {
	latin1 := "Caf\xe9 menu"
	tests := []struct {
		name, file, content string
		mode                TextMode
		want                []string
		line                string
	}{
		{"whole", "menu.md", "# Menu\n\n" + latin1 + "\n\nTea and cake.\n", TextAuto, nil, "menu.md:3:4"},
		{"paragraphs", "menu.txt", "Open daily.\n\n# Menu\n" + latin1 + "\nTea and cake.\n\nClosed on Mondays.\n", TextParagraphs,
			[]string{"Open daily.", "Closed on Mondays."}, "menu.txt:4:4"},
		{"lines", "menu.txt", "Open daily.\n" + latin1 + "\nTea and cake.\n", TextLines,
			[]string{"Open daily.", "Tea and cake."}, "menu.txt:2:4"},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			got, rep, err := readTexts(t, c.file, c.content, Options{Text: c.mode, Skip: true})
			if c.want == nil {
				if !errors.Is(err, ErrEmptyDataset) || !strings.Contains(err.Error(), "no valid examples (1 bad records skipped)") {
					t.Errorf("got %q, %v; want no example, the document skipped", got, err)
				}
			} else if err != io.EOF || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
			if rep.Skipped != 1 || len(rep.SkipErrors) != 1 || !strings.Contains(rep.SkipErrors[0], c.line) {
				t.Errorf("report %+v: want one record skipped at %s", rep, c.line)
			}
		})
	}
}

// TestKindOfNamesEveryExtension: a file whose extension ftune does not
// read is refused naming every extension it does (.ndjson, .tab, .text
// and .markdown were left out) and data.format, which reads a file of
// another name.
func TestKindOfNamesEveryExtension(t *testing.T) {
	_, err := KindOf("notes.mdx")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "data.format") {
		t.Fatalf("KindOf(notes.mdx): %v", err)
	}
	for _, ext := range []string{".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".tab", ".txt", ".text", ".md", ".markdown", ".parquet"} {
		if _, kerr := KindOf("a" + ext); kerr != nil {
			t.Errorf("KindOf(a%s): %v", ext, kerr)
		}
		if !strings.Contains(err.Error(), ext+",") && !strings.Contains(err.Error(), ext+" ") && !strings.Contains(err.Error(), ext+";") {
			t.Errorf("the refusal does not name %s: %v", ext, err)
		}
	}
}

// TestRecordLimitWholeDocument: a text file read whole past the record
// limit is said to be one long document, which data.text_unit cuts,
// rather than asked whether it is the format its extension says; a
// record of another kind keeps that question.
func TestRecordLimitWholeDocument(t *testing.T) {
	doc := strings.Repeat("Turn the dial clockwise.\n\n", 20_000) // 520 KB
	tests := []struct {
		file      string
		opts      Options
		want, not string
	}{
		{"guide.md", Options{}, "data.text_unit paragraph or line", "extension"},
		{"guide.txt", Options{Text: TextWhole}, "data.text_unit paragraph or line", "extension"},
		{"guide.txt", Options{}, "", ""}, // lines under the limit
		{"one-line.txt", Options{}, "is the file the format its extension says?", "text_unit"},
	}
	for _, c := range tests {
		content := doc
		if c.file == "one-line.txt" {
			content = strings.ReplaceAll(doc, "\n", " ")
		}
		c.opts.MaxRecordBytes = 256 << 10
		_, _, err := readTexts(t, c.file, content, c.opts)
		if c.want == "" {
			if err != io.EOF {
				t.Errorf("%s: %v", c.file, err)
			}
			continue
		}
		if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
			t.Errorf("%s (%+v): %v; want %q", c.file, c.opts.Text, err, c.want)
		}
	}
}
