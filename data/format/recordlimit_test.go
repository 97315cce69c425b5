package format

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestRecordLimit: a record longer than Options.MaxRecordBytes is refused
// in every streamed format, with its position where the format gives one,
// and records under it pass however many there are.
func TestRecordLimit(t *testing.T) {
	const limit = 256 << 10
	long := strings.Repeat("x", 1<<20)
	small := strings.Repeat(`{"text":"a short line of text"}`+"\n", 100_000) // 3.1 MiB in lines under the limit
	tests := []struct {
		name, file, content, pos string
		opts                     Options
	}{
		{"jsonl", "d.jsonl", `{"text":"a"}` + "\n" + `{"text":"` + long + `"}` + "\n", ":2:", Options{}},
		{"json array", "d.json", `[{"text":"a"},` + "\n" + `{"text":"` + long + `"}]`, ":1:15:", Options{}},
		{"csv", "d.csv", "text\na\n" + long + "\n", ":3:", Options{}},
		{"tsv", "d.tsv", "text\na\n" + long + "\n", ":3:", Options{}},
		{"csv header", "d.csv", long + "\na\n", ":1:", Options{}},
		{"text lines", "d.txt", "a\n" + long + "\n", ":2:", Options{}},
		{"text paragraphs", "d.txt", "a\n\n" + strings.Repeat("words and words\n", 70_000), ":3:", Options{Text: TextParagraphs}},
		{"json object", "d.json", `{"text":"` + long + `"}`, ":1:", Options{}},
		{"json object's list of records", "d.json", `{"data": [{"text":"a"},` + "\n" + `{"text":"` + long + `"}]}`, ":1:24:", Options{}}, // where the array's would be: after the record before
		{"a json array in a .jsonl file", "d.jsonl", "[" + strings.Repeat(`{"text":"a"},`, 100_000) + `{"text":"a"}]`, ":1:", Options{}},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			c.opts.MaxRecordBytes = limit
			r, err := NewReader(strings.NewReader(c.content), c.file, mustKind(t, c.file), c.opts)
			if err == nil {
				for err == nil {
					_, err = r.Next()
				}
			}
			if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), c.file+c.pos) || !strings.Contains(err.Error(), "runs past 262144 bytes") {
				t.Errorf("got %v", err)
			}
		})
	}
	r, err := NewReader(strings.NewReader(small), "small.jsonl", KindJSONL, Options{MaxRecordBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; err == nil; n++ {
		_, err = r.Next()
	}
	if err != io.EOF || n != 100_001 {
		t.Errorf("100,000 short lines under a %d-byte record limit: %d reads, %v", limit, n, err)
	}
	// An object's list of records is bounded per record, as an array is.
	wrapped := `{"version": "1", "data": [` + strings.Repeat(`{"text":"a short line of text"},`+"\n", 100_000) + `{"text":"a"}]}`
	r, err = NewReader(strings.NewReader(wrapped), "wrapped.json", KindJSON, Options{MaxRecordBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	for n = 0; err == nil; n++ {
		_, err = r.Next()
	}
	if err != io.EOF || n != 100_002 {
		t.Errorf("an object's 100,001 short records under a %d-byte record limit: %d reads, %v", limit, n, err)
	}
}

func mustKind(t *testing.T, file string) Kind {
	k, err := KindOf(file)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// endless is an endless stream of one byte, with no newline.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// TestRecordLimitEndlessLine: a stream with no end and no newline is
// refused after the default limit, holding about that much memory, rather
// than read until memory runs out.
func TestRecordLimitEndlessLine(t *testing.T) {
	for _, kind := range []Kind{KindJSONL, KindText} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := NewReader(endless('{'), "endless", kind, Options{})
		if err == nil {
			_, err = r.Next()
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrRecordTooLarge) {
			t.Errorf("%s: got %v", kind, err)
		}
		// bufio's ReadBytes grows its result by doubling: about 2.5 times
		// the limit in all.
		if got := after.TotalAlloc - before.TotalAlloc; got > 4*DefaultMaxRecordBytes {
			t.Errorf("%s: allocated %d MiB reading to a %d MiB limit", kind, got>>20, DefaultMaxRecordBytes>>20)
		}
	}
}
