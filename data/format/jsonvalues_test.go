package format

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/jsonsize"
)

// hostileValues is a JSON list of n zeros: n+1 values in 2n+1 bytes.
func hostileValues(n int) string {
	return "[" + strings.Repeat("0,", n-1) + "0]"
}

// TestRecordValues: a record within the byte bound that holds more JSON
// values than maxRecordValues (a 4 MB line of two million zeros, which
// encoding/json would decode to hundreds of megabytes) is refused before
// it is decoded, naming the file, line and column and the bound, in every
// JSON layout and in the JSON text a record's strings hold; it is
// counted, not decoded.
func TestRecordValues(t *testing.T) {
	junk := hostileValues(maxRecordValues)
	csvJunk := `"[{""role"":""user"",""content"":""a""},{""role"":""assistant"",""content"":""b""}, ` + junk + `]"`
	tests := []struct {
		name, file, content, pos string
		allocMiB                 uint64 // the most it may allocate; 64 MiB where 0
	}{
		{"jsonl", "d.jsonl", `{"text":"a"}` + "\n" + `{"text":"b","junk":` + junk + `}` + "\n", ":2:", 0},
		{"jsonl, the column", "d.jsonl", `{"text":"a"}` + "\n" + `  {"junk":` + junk + `}` + "\n", fmt.Sprintf(":2:%d:", 2*maxRecordValues+6), 0}, // the object, its key, the list and V-2 zeros: the (V-2)th zero, past 2 blanks, 9 bytes and V-3 zeros with commas
		{"json array", "d.json", "[{\"text\":\"a\"},\n {\"text\":\"b\",\"junk\":" + junk + "}]", ":2:", 0},
		{"json object", "d.json", `{"text":"b","junk":` + junk + `}`, ":1:", 0},
		// Not yet known to be a record when "junk" is read, the object is
		// walked token by token, each allocated and dropped: refused after
		// maxRecordValues of them, not at its end.
		{"json object, the record's field last", "d.json", `{"junk":` + hostileValues(maxRecordValues+10) + `,"text":"b"}`, fmt.Sprintf(":1:%d:", 2*maxRecordValues+12), 400}, // the first zero, decoded to tell whether the list is of records, and V more
		{"json object's list of records", "d.json", "{\"data\": [{\"text\":\"a\"},\n{\"text\":\"b\",\"junk\":" + junk + "}]}", ":2:", 0},
		{"json object's first record", "d.json", "{\"data\": [{\"text\":\"b\",\"junk\":" + junk + "}]}", ":1:", 0},
		{"messages in a csv cell", "d.csv", "messages\n" + csvJunk + "\n", ":2:", 0},
		{"tools in a string", "d.jsonl", `{"messages":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `,` + tcAnswer + `],"tools":` + jsonString(junk) + `}`, ":1:", 0},
		{"a call's arguments in a string", "d.jsonl", `{"messages":[` + tcUser + `,` + strings.Replace(tcCallOpenAI, jsonString(`{"unit": "celsius", "city": "Z\u00fcrich"}`), jsonString(`{"unit":`+junk+`}`), 1) + `,` + tcResult + `,` + tcAnswer + `],"tools":` + tcToolsList + `}`, ":1:", 0},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r, err := NewReader(strings.NewReader(c.content), c.file, mustKind(t, c.file), Options{})
			for err == nil {
				_, err = r.Next()
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), c.file+c.pos) || !strings.Contains(err.Error(), "more than 2000000 JSON values") {
				t.Errorf("got %.300v", err)
			}
			// Decoded, two million values are some 200 MB; counted, the
			// reader holds the line and a copy or two of it (4 MB each).
			if c.allocMiB == 0 {
				c.allocMiB = 64
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > c.allocMiB<<20 {
				t.Errorf("allocated %d MiB reading a %d MiB record", got>>20, len(c.content)>>20)
			}
		})
	}
	// Skipping bad records, the JSON Lines reader goes on after it.
	r, err := NewReader(strings.NewReader(`{"text":"b","junk":`+junk+`}`+"\n"+`{"text":"a"}`+"\n"), "d.jsonl", KindJSONL, Options{Skip: true})
	n := 0
	for ; err == nil; n++ {
		_, err = r.Next()
	}
	if err != io.EOF || n != 2 || r.Report().Skipped != 1 {
		t.Errorf("skipping: %d reads, %d skipped, %.300v", n, r.Report().Skipped, err)
	}
}

// TestRecordValuesRealistic: records far bigger than real ones read under
// the bound: a tool-calling conversation of 2,000 turns with 300 tools
// whose JSON schemas nest, in JSON Lines and in a JSON array, and a list
// of just maxRecordValues values.
func TestRecordValuesRealistic(t *testing.T) {
	var tools, msgs []string
	for i := range 300 {
		props := make([]string, 20)
		for j := range props {
			props[j] = fmt.Sprintf(`"p%d":{"type":"object","description":"a parameter","properties":{"unit":{"type":"string","enum":["celsius","fahrenheit","kelvin"]},"n":{"type":"integer","minimum":0,"maximum":100}},"required":["unit"]}`, j)
		}
		tools = append(tools, fmt.Sprintf(`{"type":"function","function":{"name":"tool_%d","description":"does %d","parameters":{"type":"object","required":["p0"],"properties":{%s}}}}`, i, i, strings.Join(props, ",")))
	}
	tools = append(tools, strings.Trim(tcToolsList, "[]"))
	for i := range 2000 {
		msgs = append(msgs, tcUser, strings.ReplaceAll(tcCallHF, "call_1", fmt.Sprint("call_", i)), strings.ReplaceAll(tcResult, "call_1", fmt.Sprint("call_", i)), tcAnswer)
	}
	rec := `{"messages":[` + strings.Join(msgs, ",") + `],"tools":[` + strings.Join(tools, ",") + `]}`
	// 1.9 MB and some 300,000 values: a conversation and tools far past
	// real ones are a sixth of the bound.
	if _, over := jsonsize.CountValues([]byte(rec), maxRecordValues/6); over {
		t.Fatalf("the realistic record, %d bytes, is not within a sixth of the bound", len(rec))
	}
	for _, c := range []struct{ file, content string }{
		{"d.jsonl", rec + "\n" + rec + "\n"},
		{"d.json", "[" + rec + ",\n" + rec + "]"},
	} {
		r, err := NewReader(strings.NewReader(c.content), c.file, mustKind(t, c.file), Options{})
		n := 0
		for err == nil {
			var ex Example
			if ex, err = r.Next(); err == nil {
				n++
				if len(ex.Messages) != 8000 || len(ex.Tools) == 0 {
					t.Errorf("%s: %d messages, tools %.40q", c.file, len(ex.Messages), ex.Tools)
				}
			}
		}
		if err != io.EOF || n != 2 {
			t.Errorf("%s: %d examples, %.300v", c.file, n, err)
		}
	}
	// Exactly the bound decodes: the object, its two keys and "b" are 4
	// values, the list and its zeros the rest.
	rec = `{"text":"b","junk":` + hostileValues(maxRecordValues-5) + `}`
	if _, over := jsonsize.CountValues([]byte(rec), maxRecordValues); over {
		t.Errorf("the record of exactly %d values is counted over", maxRecordValues)
	}
	if _, _, msg, err := decodeObject([]byte(rec)); err != nil {
		t.Errorf("a record of exactly %d values: %v: %.300s", maxRecordValues, err, msg)
	}
	if _, _, _, err := decodeObject([]byte(`{"text":"b","junk":` + hostileValues(maxRecordValues-4) + `}`)); !errors.Is(err, ErrRecordTooLarge) {
		t.Errorf("a record of %d values: %v", maxRecordValues+1, err)
	}
}

// TestObjectMemberErrors: a member of a top-level object read past whole
// (not walked token by token, TestRecordValues) has its syntax errors
// placed at their byte, as the tokens placed them.
func TestObjectMemberErrors(t *testing.T) {
	tests := []struct{ content, pos, msg string }{
		{"{\"text\":\"a\",\n \"x\":[1,2 3]}", ":2:11:", "invalid character '3' after array element"},
		{"{\"text\":\"a\",\n \"x\": {\"a\" 1}}", ":2:12:", "invalid character '1' after object key"},
		{"{\"text\":\"a\",\n \"x\":tru}", ":2:9:", "invalid character '}' in literal true"},
		{"{\"text\":\"a\",\n \"x\":[1,2,", ":2:11:", "unexpected end of file"},
		{`{"version":"1","meta":{"a":[1,}, "data":[{"text":"a"}]}`, ":1:31:", "invalid character '}' looking for beginning of value"},
		{`{"data":[{"text":"a"}], "x": {"a":1,,}}`, ":1:38:", "invalid character ',' looking for beginning of object key"},
	}
	for _, c := range tests {
		r, err := NewReader(strings.NewReader(c.content), "d.json", KindJSON, Options{})
		for err == nil {
			_, err = r.Next()
		}
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "d.json"+c.pos) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: got %v", c.content, err)
		}
	}
}
