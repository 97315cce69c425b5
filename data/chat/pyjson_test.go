package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// pyGolden is testdata/pyjson/golden.json (make_golden.py): Python's
// json.dumps of JSON values under each option set of transformers' tojson,
// and Jinja2's renderings of snippets over the same values.
type pyGolden struct {
	Dumps []struct {
		Value   string         `json:"value"`
		Options map[string]any `json:"options"`
		Text    string         `json:"text"`
	} `json:"dumps"`
	SnippetVars struct {
		Messages []Message `json:"messages"`
		S        string    `json:"s"`
	} `json:"snippet_vars"`
	Snippets []struct {
		Template string  `json:"template"`
		Text     *string `json:"text"`
		Error    string  `json:"error"`
	} `json:"snippets"`
	Renders []struct {
		Value    string  `json:"value"`
		Template string  `json:"template"`
		Text     *string `json:"text"`
		Error    string  `json:"error"`
	} `json:"renders"`
}

func readPyGolden(t *testing.T) pyGolden {
	t.Helper()
	b, err := os.ReadFile("testdata/pyjson/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g pyGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Dumps) == 0 || len(g.Renders) == 0 {
		t.Fatal("empty golden")
	}
	return g
}

// TestPythonJSON: tojson writes what Python's json.dumps writes, byte for
// byte, for values decoded as json.loads decodes them (key order and
// repeated keys, integers of any size, float reprs, escapes) under every
// option transformers' filter takes: indent as a number or a string,
// sort_keys, separators, ensure_ascii.
func TestPythonJSON(t *testing.T) {
	for _, c := range readPyGolden(t).Dumps {
		v, err := decodeJSON(c.Value)
		if err != nil {
			t.Fatalf("%s: %v", c.Value, err)
		}
		src := "{{ v | tojson("
		sep := ""
		for _, k := range []string{"indent", "sort_keys", "separators", "ensure_ascii"} {
			o, ok := c.Options[k]
			if !ok {
				continue
			}
			b, _ := json.Marshal(o)
			lit := string(b)
			switch o {
			case true:
				lit = "True"
			case false:
				lit = "False"
			}
			src += sep + k + "=" + lit
			sep = ", "
		}
		src += ") }}"
		tpl, err := New("dump", src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.RenderWith(context.Background(), nil, RenderOptions{Vars: map[string]any{"v": v}})
		if err != nil {
			t.Fatalf("%s %s: %v", c.Value, src, err)
		}
		if got != c.Text {
			t.Errorf("%s with %s:\n got %q\nwant %q", c.Value, src, got, c.Text)
		}
	}
}

// TestPythonSubscripts: dict views and |items keep a JSON object's order,
// negative indexes count from the end (x[-1] of one item included),
// strings index by character, out of range is undefined: as Jinja2 renders
// the same snippets.
func TestPythonSubscripts(t *testing.T) {
	n := 0
	for _, c := range readPyGolden(t).Renders {
		if c.Text == nil {
			continue // Python raised on this value (x.items() of a list, ...)
		}
		v, err := decodeJSON(c.Value)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := New("snippet", c.Template, "", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.RenderWith(context.Background(), nil, RenderOptions{Vars: map[string]any{"v": v}})
		if err != nil {
			t.Errorf("%s over %s: %v", c.Template, c.Value, err)
			continue
		}
		if got != *c.Text {
			t.Errorf("%s over %s:\n got %q\nwant %q", c.Template, c.Value, got, *c.Text)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("only %d renderings compared", n)
	}
}

// TestPythonSnippets: Python's semantics where gonja's differ, as Jinja2
// renders the snippets of make_golden.py: dictsort on dict literals and
// messages, an empty dict false, str.startswith/endswith with tuples and
// positions, split/rsplit/strip without arguments, string filters on
// undefined, dict keys that are not strings, method calls on
// parenthesized expressions and their results given to tojson, find and
// its kin by character, dict() in keyword order.
func TestPythonSnippets(t *testing.T) {
	g := readPyGolden(t)
	if len(g.Snippets) < 10 {
		t.Fatalf("only %d snippets", len(g.Snippets))
	}
	for _, c := range g.Snippets {
		if c.Text == nil {
			t.Fatalf("Python raised %s on %s: not a golden", c.Error, c.Template)
		}
		tpl, err := New("snippet", c.Template, "", "")
		if err != nil {
			t.Errorf("%s: %v", c.Template, err)
			continue
		}
		got, err := tpl.RenderWith(context.Background(), g.SnippetVars.Messages, RenderOptions{Vars: map[string]any{"s": g.SnippetVars.S}})
		if err != nil {
			t.Errorf("%s: %v", c.Template, err)
			continue
		}
		if got != *c.Text {
			t.Errorf("%s:\n got %q\nwant %q", c.Template, got, *c.Text)
		}
	}
}

// TestDecodeJSONManyKeys: an object of many keys decodes in time linear
// in its keys (finding a repeated key scanned every pair before it: 40,000
// keys took 14 s, 100,000 would take minutes), a repeated key among them
// still keeping its first place and last value. The bound is 20 times
// what 100,000 keys take here (0.27 s), so load cannot fail it, and the
// quadratic scan cannot pass it.
func TestDecodeJSONManyKeys(t *testing.T) {
	const n = 100_000
	var b strings.Builder
	b.WriteString(`{"k0":"first"`)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	b.WriteString(`,"k0":"last"}`)
	start := time.Now()
	v, err := decodeJSON(b.String())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > 5*time.Second {
		t.Errorf("%d keys took %v to decode", n, took)
	}
	d, ok := v.(*exec.Dict)
	if !ok || len(d.Pairs) != n {
		t.Fatalf("decoded %T with %d pairs, want a dict of %d", v, len(d.Pairs), n)
	}
	if first := d.Pairs[0]; first.Key.String() != "k0" || first.Value.String() != "last" {
		t.Errorf("the repeated key: first pair %s=%s, want k0=last", first.Key.String(), first.Value.String())
	}
}
