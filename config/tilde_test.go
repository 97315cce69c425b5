package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestExpandPathTilde: a leading ~ or ~/ is the home directory, before
// environment variables expand; ~user is refused; a ~ elsewhere, or one a
// variable brings, stays.
func TestExpandPathTilde(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	t.Setenv("FT_TILDE", "~/t")
	t.Setenv("FT_A", "a")
	for _, tc := range []struct{ in, want, err string }{
		{"~", "/home/u", ""},
		{"~/x", "/home/u/x", ""},
		{"~/$FT_A/y", "/home/u/a/y", ""},
		{"~/", "/home/u/", ""},
		{"./~/x", "./~/x", ""},
		{"a/~/x", "a/~/x", ""},
		{"$FT_TILDE", "~/t", ""},
		{"~bob/x", "", `~bob (another user's home directory) is not expanded, only ~ and ~/ (yours): write the folder out, or ./~bob/x for a name that starts with ~ (in "~bob/x")`},
		{"~$FT_A", "", "~$FT_A (another user's"},
		{"models/a\x00b", "", `a NUL byte at byte 8: no path holds one (in "models/a\x00b")`},
	} {
		got, err := ExpandPath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandPath(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	t.Setenv("HOME", "/")
	if got, err := ExpandPath("~/x"); err != nil || got != "/x" {
		t.Errorf("HOME=/: ExpandPath(~/x) = %q, %v", got, err)
	}
	t.Setenv("HOME", "/h$FT_A")
	if got, err := ExpandPath("~/x"); err != nil || got != "/h$FT_A/x" {
		t.Errorf("HOME with a $: ExpandPath(~/x) = %q, %v", got, err)
	}
}

// TestEveryPathKeyExpandsTilde walks RunConfig: every key tagged path:"1"
// reads ~/x, from --set and from a file, as the home directory's x (it
// made a folder named ~ in the working directory), and refuses ~bob/x
// naming the --set or the file's line.
func TestEveryPathKeyExpandsTilde(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	var found []string
	for _, l := range leaves() {
		p, f := l.path, l.field
		if f.Tag.Get("path") == "" {
			continue
		}
		found = append(found, p)
		keys := strings.Split(p, ".")
		file := func(val string) string { return runFile(p, val) }
		for _, val := range []string{"~/x", `"~"`, "[~/x]"} {
			if val == "[~/x]" && f.Type.Kind() != reflect.Slice {
				continue
			}
			want := "/home/u/x"
			if val == `"~"` {
				want = "/home/u"
			}
			c := Default()
			if err := Apply(c, []string{p + "=" + val}); err != nil {
				t.Errorf("--set %s=%s: %v", p, val, err)
			} else if got := valueOf(t, c, p); got != want {
				t.Errorf("--set %s=%s: %q, want %q", p, val, got, want)
			}
			c, err := Parse([]byte(file(val)), "x.yaml")
			if err != nil {
				t.Errorf("%s: %v", file(val), err)
			} else if got := valueOf(t, c, p); got != want {
				t.Errorf("%s: %q, want %q", file(val), got, want)
			}
		}
		err := Apply(Default(), []string{p + "=~bob/x"})
		if err == nil || !strings.HasPrefix(err.Error(), "--set "+p+"=~bob/x: "+p) || !strings.Contains(err.Error(), ": ~bob (another user's home directory) is not expanded") {
			t.Errorf("--set %s=~bob/x: %v", p, err)
		}
		_, err = Parse([]byte(file("~bob/x")), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "x.yaml:"+string(rune('0'+len(keys)))+": "+p) || !strings.Contains(err.Error(), "~bob (another user's") {
			t.Errorf("%s: %v", file("~bob/x"), err)
		}
	}
	if len(found) < 7 {
		t.Fatalf("path keys %q: want model.path, data.root, data.files, data.template, data.token_cache, init_from, output_dir at least", found)
	}
}

// valueOf is the string at a path key, or a list's one element.
func valueOf(t *testing.T, c *RunConfig, path string) string {
	t.Helper()
	v, ok := valueAt(reflect.ValueOf(c).Elem(), path)
	if !ok {
		t.Fatalf("no key %s", path)
	}
	if v.Kind() == reflect.Slice {
		if v.Len() != 1 {
			t.Fatalf("%s: %v, want one element", path, v.Interface())
		}
		v = v.Index(0)
	}
	return v.String()
}
