package format

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
)

// FuzzJSONL checks that no input crashes the JSONL reader and that every
// failure is positioned: the seed corpus is in testdata/fuzz/FuzzJSONL.
func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"text":"a"}` + "\n" + `{"text":"b"}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"b\":1,\"a\":\"\\u00e9\"}"}}]},{"role":"tool","tool_call_id":"c","content":"r"},{"role":"assistant","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}]}`))
	f.Add([]byte(`{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"[{\"name\":\"f\",\"arguments\":{\"z\":[1.50]}}]"},{"from":"observation","value":"r"},{"from":"gpt","value":"a"}],"tools":"[{\"name\":\"f\"}]"}`))
	f.Add([]byte(`{"prompt":"q","chosen":" a","rejected":" b"}` + "\n" + `{"chosen":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"rejected":[{"role":"user","content":"q"},{"role":"assistant","content":"b"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, skip := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(data), "fuzz.jsonl", KindJSONL, Options{Skip: skip})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				ex, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					var pe *PosError
					if errors.As(err, &pe) {
						if pe.Line < 1 || pe.Line > lines || pe.Err == nil {
							t.Fatalf("bad position in %v (input has %d lines)", err, lines)
						}
					} else if !errors.Is(err, ErrEmptyDataset) {
						t.Fatalf("unpositioned error %v", err)
					}
					if skip && !errors.Is(err, ErrEmptyDataset) {
						t.Fatalf("skip mode returned a record error: %v", err)
					}
					break
				}
				if err := ex.Validate(); err != nil {
					t.Fatalf("returned an invalid example %+v: %v", ex, err)
				}
				n++
			}
			rep := r.Report()
			if rep.Examples != n || rep.Examples+rep.Skipped > rep.Records || rep.Records > lines {
				t.Fatalf("report %+v after %d examples, %d lines", rep, n, lines)
			}
		}
	})
}

// FuzzJSONArray does the same for the streamed JSON reader (an array, an
// object holding a list of records, one object), whose position tracking
// keeps a sliding window of the input.
func FuzzJSONArray(f *testing.F) {
	f.Add([]byte("[\n {\"text\":\"a\"},\n {\"text\":\"b\"}\n]"))
	f.Add([]byte(`[{"instruction":"i","output":"o"}, {"text" 1}]`))
	f.Add([]byte("[{\"text\":\"\xff\"}]"))
	f.Add([]byte("{\"version\": 1,\n\"data\": [{\"text\":\"a\"},\n{\"text\" 1}], \"x\": []}"))
	f.Add([]byte("{\"rows\": [{\"row_idx\": 0, \"row\": {\"text\": \"a\"}, \"truncated_cells\": [\"text\"]}, {\"row\": 1}]}"))
	f.Add([]byte("{\"train\": [{\"text\":\"a\"}], \"test\": [{\"text\":\"b\"}]}"))
	f.Add([]byte("\xef\xbb\xbf{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n{\"text\": \"b\"}"))
	f.Add([]byte("{\"text\": [\"a\", \"b\"]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		r, err := NewReader(bytes.NewReader(data), "fuzz.json", KindJSON, Options{Skip: true})
		if err != nil {
			t.Fatal(err)
		}
		for {
			ex, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *PosError
				if errors.As(err, &pe) && (pe.Line < 1 || pe.Line > lines || pe.Column < 1) {
					t.Fatalf("bad position in %v (input has %d lines)", err, lines)
				}
				if !errors.As(err, &pe) && !errors.Is(err, ErrEmptyDataset) {
					t.Fatalf("unpositioned error %v", err)
				}
				return
			}
			if err := ex.Validate(); err != nil {
				t.Fatalf("invalid example %+v: %v", ex, err)
			}
		}
	})
}

// FuzzDelimited covers the CSV, TSV and plain-text readers: no input
// crashes them, every error is positioned within the input, and every
// example they return is valid.
func FuzzDelimited(f *testing.F) {
	f.Add([]byte("input,output\na,b\n\"c\"\"\",d\n"), uint8(0))
	f.Add([]byte("input,output\na,\"b\nc,d\n"), uint8(0))
	f.Add([]byte("prompt\tresponse\nq\ta\n"), uint8(1))
	f.Add([]byte("line one\n\nparagraph\ntwo\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		kinds := []Kind{KindCSV, KindTSV, KindText}
		kind := kinds[int(which)%len(kinds)]
		lines := bytes.Count(data, []byte("\n")) + 1
		r, err := NewReader(bytes.NewReader(data), "fuzz."+string(kind), kind, Options{Skip: true, Text: TextMode(which / 3 % 4)}) // every TextMode, TextWhole too
		if err != nil {
			var pe *PosError
			if !errors.As(err, &pe) || pe.Line > lines {
				t.Fatalf("open: %v", err)
			}
			return
		}
		for {
			ex, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *PosError
				if errors.As(err, &pe) && (pe.Line < 0 || pe.Line > lines) {
					t.Fatalf("bad position in %v (input has %d lines)", err, lines)
				}
				if !errors.As(err, &pe) && !errors.Is(err, ErrEmptyDataset) {
					t.Fatalf("unpositioned error %v", err)
				}
				return
			}
			if err := ex.Validate(); err != nil {
				t.Fatalf("invalid example %+v: %v", ex, err)
			}
		}
	})
}

// TestMain runs this package's tests and fuzz workers (which inherit it)
// under testutil.TestMemory of address space: the package reads untrusted
// input, and a regression that allocates without bound must stop there.
func TestMain(m *testing.M) {
	testutil.MustLimitMemory(testutil.TestMemory)
	os.Exit(m.Run())
}

func TestUnderMemoryLimit(t *testing.T) { testutil.CheckMemoryLimited(t) }
