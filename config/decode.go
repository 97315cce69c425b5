package config

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads a run file on top of Default(). It reports unknown keys and
// unparsable values (every one, each with file:line); ranges are checked
// by Validate, after any --set overrides.
func Load(path string) (*RunConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes run-file text; name is used in error messages.
func Parse(data []byte, name string) (*RunConfig, error) {
	cfg := Default()
	cfg.file = name
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, syntaxError(name, data, err)
	}
	// yaml.Unmarshal would read the first document and drop the rest: a
	// run file is one document, so a second one (after ---) is refused
	// rather than ignored. One holding nothing (a trailing ---, or
	// comments only) drops nothing.
	var next yaml.Node
	if err := dec.Decode(&next); err != nil && err != io.EOF {
		return nil, syntaxError(name, data, err)
	} else if err == nil && len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
		return nil, ErrorList{{Where: fmt.Sprintf("%s:%d", name, next.Content[0].Line), Kind: ErrBadValue,
			Msg: "a second YAML document (after ---): a run file is one document, and the rest would be ignored (merge it into the first, or remove the ---)"}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return cfg, nil // an empty file is all defaults
	}
	d := &decoder{cfg: cfg, where: func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", name, n.Line) }}
	d.value(reflect.ValueOf(cfg).Elem(), doc.Content[0], "", false)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Resolve is what `ftune train` does with its arguments: the run file (or
// the defaults when path is ""), then the --set overrides, then Validate.
func Resolve(path string, sets []string) (*RunConfig, error) {
	cfg := Default()
	if path != "" {
		var err error
		if cfg, err = Load(path); err != nil {
			return nil, err
		}
	}
	if err := Apply(cfg, sets); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns yaml's "yaml: line 3: did not find ..." into
// "run.yaml:3: did not find ...", the form of every other error here. A
// tab, which yaml reports as a "character that cannot start any token",
// is named as what it is.
func syntaxError(name string, data []byte, err error) error {
	msg := err.Error()
	where := name
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		where, msg = name+":"+m[1], msg[len(m[0]):]
		line, _ := strconv.Atoi(m[1])
		if col := tabColumn(data, line); col > 0 && strings.Contains(msg, "cannot start any token") {
			msg = fmt.Sprintf("a tab at column %d: tabs cannot indent YAML (indent with spaces)", col)
		}
	}
	return ErrorList{{Where: where, Msg: strings.TrimPrefix(msg, "yaml: "), Kind: ErrBadValue}}
}

// tabColumn is the 1-based column of the first tab on a 1-based line of
// data, 0 when there is none.
func tabColumn(data []byte, line int) int {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	return strings.IndexByte(lines[line-1], '\t') + 1
}

// decoder walks a YAML node tree and the RunConfig type together.
type decoder struct {
	cfg   *RunConfig
	where func(n *yaml.Node) string
	errs  ErrorList
}

func (d *decoder) fail(n *yaml.Node, path string, kind error, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Where: d.where(n), Path: path, Msg: fmt.Sprintf(format, args...), Kind: kind})
}

var durationType = reflect.TypeOf(Duration(0))

// yamlName is a struct field's key ("" for unexported or untagged fields).
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// value decodes n into v; path is v's dotted key path; expand says v (or
// its elements) is a file path in which environment variables expand.
func (d *decoder) value(v reflect.Value, n *yaml.Node, path string, expand bool) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	d.cfg.setSource(path, d.where(n))
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Type() != durationType {
		if v.Kind() == reflect.Struct {
			return // "lora:" with nothing under it keeps the defaults
		}
		v.Set(reflect.Zero(v.Type()))
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(v, n, path)
	case v.Kind() == reflect.Struct:
		d.structure(v, n, path)
	case v.Kind() == reflect.Map:
		d.mapping(v, n, path)
	case v.Kind() == reflect.Slice:
		d.sequence(v, n, path, expand)
	default:
		d.scalar(v, n, path, expand)
	}
}

func (d *decoder) structure(v reflect.Value, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrBadValue, "want a section of keys, got %s", describe(n))
		return
	}
	t := v.Type()
	var names []string
	index := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
			index[name] = i
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if line, dup := seen[key]; dup {
			d.fail(k, p, ErrBadValue, "set twice (first at line %d)", line)
			continue
		}
		seen[key] = k.Line
		fi, ok := index[key]
		if _, gone := retiredKeys[p]; !ok && gone {
			d.cfg.retired(p, d.where(k))
			continue
		}
		if !ok {
			where := "at the top level"
			if path != "" {
				where = "in " + path
			}
			d.fail(k, "", ErrUnknownKey, "unknown key `%s` %s%s", key, where, didYouMean(suggest(key, path, names)))
			continue
		}
		f := t.Field(fi)
		d.value(v.Field(fi), val, p, f.Tag.Get("path") != "")
	}
}

func (d *decoder) mapping(v reflect.Value, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, ErrBadValue, "want a map of name: value, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type())) // {} and an absent map are both nil
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	// A key written twice would otherwise be last-wins, silently: refused
	// as in a section (see structure).
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if line, dup := seen[k.Value]; dup {
			d.fail(k, join(path, k.Value), ErrBadValue, "set twice (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		p := join(path, k.Value)
		d.value(elem, n.Content[i+1], p, false)
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

func (d *decoder) sequence(v reflect.Value, n *yaml.Node, path string, expand bool) {
	if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
		// targets: all-linear is a list of one.
		s := reflect.MakeSlice(v.Type(), 1, 1)
		d.scalar(s.Index(0), n, path, expand)
		v.Set(s)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, ErrBadValue, "want a list, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type())) // [] and an absent list are both nil
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		d.value(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i), expand)
	}
	v.Set(s)
}

func (d *decoder) scalar(v reflect.Value, n *yaml.Node, path string, expand bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, ErrBadValue, "want a single value, got %s", describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		s := n.Value
		if expand {
			var err error
			if s, err = ExpandEnv(s); err != nil {
				d.fail(n, path, ErrBadValue, "%v", err)
				return
			}
		}
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || (n.Tag != "!!bool" && n.Tag != "!!str") {
			d.fail(n, path, ErrBadValue, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, ErrBadValue, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, ErrBadValue, "want a whole number >= 0, got %q", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		f, err := parseFloat(n.Value)
		if err != nil {
			d.fail(n, path, ErrBadValue, "want a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Every field type is listed above; a new one must be added there.
		d.fail(n, path, ErrBadValue, "internal: no decoder for %s", v.Type())
	}
}

// parseFloat accepts Go and YAML spellings: 2e-4, 1_000, .inf, .nan.
func parseFloat(s string) (float64, error) {
	switch strings.ToLower(s) {
	case ".inf", "+.inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
}

// duration accepts "30m", "1h30m", or a bare number of seconds (0 = none).
func (d *decoder) duration(v reflect.Value, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, ErrBadValue, "want a duration such as 30m, got %s", describe(n))
		return
	}
	if n.Tag == "!!null" || n.Value == "" {
		v.SetInt(0)
		return
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		ns := f * float64(time.Second)
		// int64(ns) of a value past int64's range (1e20, inf) is undefined
		// (it read as a large negative duration), and a positive value
		// under a nanosecond would round to 0, which means no limit.
		switch {
		case math.IsNaN(f) || math.Abs(ns) >= math.MaxInt64:
			d.fail(n, path, ErrBadValue, "%s seconds is out of range: a duration is at most %s (about 292 years)", n.Value, time.Duration(math.MaxInt64))
		case f > 0 && int64(ns) == 0:
			d.fail(n, path, ErrBadValue, "%s seconds is under a nanosecond and would round to 0, which means no limit (write 0 for none)", n.Value)
		default:
			v.SetInt(int64(ns))
		}
		return
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, ErrBadValue, "want a duration such as 30m or 1h30m, got %q", n.Value)
		return
	}
	if t == 0 && strings.ContainsAny(n.Value, "123456789") {
		d.fail(n, path, ErrBadValue, "%s is under a nanosecond and would round to 0, which means no limit (write 0 for none)", n.Value)
		return
	}
	v.SetInt(int64(t))
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// ExpandEnv expands $VAR and ${VAR} in s; an unset variable is an error
// (a silent "" would turn $DATA/train.jsonl into /train.jsonl). $$ is a
// literal $.
func ExpandEnv(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		if name == "$" {
			return "$"
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, "$"+name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (in %q)", strings.Join(missing, ", "), s)
	}
	return out, nil
}
