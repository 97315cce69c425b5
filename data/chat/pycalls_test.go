package chat

import (
	"strings"
	"testing"
)

// TestPythonCallErrors: str.find and its kin and dict() refuse what
// Python refuses, with Python's message (their results are compared with
// Jinja2's in TestPythonSnippets): index and rindex raise where find
// gives -1, a sub that is not a string, a start that is not an integer;
// dict() with two positional arguments or a non-iterable one, pairs that
// are not pairs, and dict(...) with keywords where the template gave the
// name dict to something it cannot call so (a macro named dict takes
// them: TestDictMacro).
func TestPythonCallErrors(t *testing.T) {
	for src, want := range map[string]string{
		"{{ 'héllo'.index('z') }}":        "substring not found",
		"{{ 'héllo'.rindex('l', 0, 2) }}": "substring not found",
		"{{ 'abc'.find(1) }}":             "must be str, not int",
		"{{ 'abc'.count() }}":             "count() takes at least 1 argument (0 given)",
		"{{ 'abc'.find('a', 1.5) }}":      "slice indices must be integers or None",
		"{{ 'abc'.find('a', 0, 1, 2) }}":  "find() takes at most 3 arguments (4 given)",
		"{{ dict({}, {}, a=1) }}":         "dict expected at most 1 argument, got 2",
		"{{ dict(5) }}":                   "'int' object is not iterable",
		"{{ dict([[1, 2, 3]], a=1) }}":    "dictionary update sequence element #0 has length 3; 2 is required",
		"{{ dict([1]) }}":                 "cannot convert dictionary update sequence element #0 to a sequence",
		"{% for dict in [1] %}{{ dict(b=1, a=2) | tojson }}{% endfor %}": "the name dict is the template's own (of type int), not the built-in dict",
	} {
		tpl, err := New("t.jinja", src, "", "")
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got, err := tpl.Render(conversation, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %q, error %v; want an error with %q", src, got, err, want)
		}
	}
}

// TestDictMacro: a template's own macro named dict is called with its
// keywords, as Jinja calls it; dict(...) calls are rewritten to keep
// their keywords' order only for the built-in.
func TestDictMacro(t *testing.T) {
	const src = "{% macro dict(a, b=0) %}{{ a }}-{{ b }}{% endmacro %}{{ dict(b=2, a=1) }}|{{ dict(3, b=4) }}"
	tpl, err := New("t.jinja", src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(conversation, false); err != nil || got != "1-2|3-4" {
		t.Errorf("got %q, %v; want %q", got, err, "1-2|3-4")
	}
}
