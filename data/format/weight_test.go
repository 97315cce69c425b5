package format

import (
	"slices"
	"strings"
	"testing"
)

// TestMessageWeight reads OpenAI's chat fine-tuning "weight": 0 leaves an
// assistant message out of the loss, 1 or none learns it; any other value,
// a weight on another role, or one in a preference record is refused
// naming the file and line, never rounded or ignored.
func TestMessageWeight(t *testing.T) {
	read := func(line string) (Example, error) {
		t.Helper()
		r, err := NewReader(strings.NewReader(line+"\n"), "w.jsonl", KindJSONL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Next()
	}
	ex, err := read(`{"messages":[{"role":"user","content":"1+1?"},{"role":"assistant","content":"3","weight":0},{"role":"user","content":"Sure?"},{"role":"assistant","content":"2","weight":1},{"role":"user","content":"And 2+2?"},{"role":"assistant","content":"4","weight":null}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, m := range ex.Messages {
		got = append(got, m.NoLoss)
	}
	if want := []bool{false, true, false, false, false, false}; !slices.Equal(got, want) {
		t.Errorf("NoLoss %v, want %v", got, want)
	}
	for _, c := range []struct{ line, want string }{
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0.5}]}`, `messages[1]: bad value: field "weight": 0.5: want 0 (not learnt) or 1 (learnt)`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":"0"}]}`, `field "weight" is the string "0": want the number 0`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0},{"role":"user","content":"q2"},{"role":"assistant","content":"b","weight":0}]}`, `every assistant answer has weight 0: the record has nothing to learn`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":true}]}`, `field "weight": true: want 0`},
		{`{"messages":[{"role":"user","content":"q","weight":0},{"role":"assistant","content":"a"}]}`, `message 0 (user) has a weight; only assistant messages can have one`},
		{`{"prompt":[{"role":"user","content":"q"}],"chosen":[{"role":"assistant","content":"a","weight":0}],"rejected":[{"role":"assistant","content":"b"}]}`, `chosen[0] has weight 0: a preference record's completions are compared whole`},
	} {
		if _, err := read(c.line); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "w.jsonl:1") {
			t.Errorf("%s:\n got %v\nwant %q", c.line, err, c.want)
		}
	}
}
