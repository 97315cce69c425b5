package config

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ftune/ftune/internal/fsutil"
)

// MaxFileBytes bounds a run file: they are a few kilobytes, and eval
// reads one from the run folder an adapter sits in, which may come from
// anywhere (fsutil.MaxRunFileBytes, which track reads run folders with).
const MaxFileBytes = fsutil.MaxRunFileBytes

// Load reads a run file on top of Default(). It reports unknown keys and
// unparsable values (every one, each with file:line); ranges are checked
// by Validate, after any --set overrides. A file that is not a regular
// one (a named pipe) or is larger than MaxFileBytes is refused.
func Load(path string) (*RunConfig, error) {
	data, err := fsutil.ReadFileLimit(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes run-file text; name is used in error messages.
func Parse(data []byte, name string) (*RunConfig, error) {
	written, converted := ftuneWrote(data)
	return parse(data, name, written, converted)
}

// ParseRecord is Parse for a run's recorded config (config.yaml,
// options.json), which holds every key: ftune wrote it whether or not its
// header says so (records before the header did not), so a value equal to
// the default counts as the default (RunConfig.Chose).
func ParseRecord(data []byte, name string) (*RunConfig, error) {
	return parse(data, name, true, false)
}

// LoadRecord is Load of a run's config.yaml, read as ParseRecord reads it.
func LoadRecord(path string) (*RunConfig, error) {
	data, err := fsutil.ReadFileLimit(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseRecord(data, path)
}

// ftuneWrote says a run file begins with the header of a file ftune
// writes (WriteInit's, Resolved's or a conversion's); converted says it
// is a conversion's (Conversion.Write), whose keys marked as converted
// are the user's.
func ftuneWrote(data []byte) (written, converted bool) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	for _, h := range []string{initHeader, resolvedHeader, convertedHeader} {
		first, _, _ := strings.Cut(h, "\n")
		if bytes.HasPrefix(data, []byte("# "+first)) {
			return true, h == convertedHeader
		}
	}
	return false, false
}

func parse(data []byte, name string, written, converted bool) (*RunConfig, error) {
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
	d := &decoder{cfg: cfg, where: func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", name, n.Line) }, written: written}
	if converted {
		d.lines = strings.Split(string(data), "\n")
	}
	d.value(reflect.ValueOf(cfg).Elem(), doc.Content[0], "", false)
	if d.topKnown == 0 && d.topUnknown >= flatConfig {
		d.errs = append(ErrorList{{Where: name, Kind: ErrUnknownKey, Msg: fmt.Sprintf(
			"not an ftune run file: its %d keys sit at the top level, as in the flat configs of Axolotl, LLaMA-Factory or transformers; ftune's are under model:, data: and training: (`ftune init` writes every one with its default, commented). Each key follows with its ftune name where there is one", d.topUnknown)}}, d.errs...)
	}
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

// flatConfig is how many unknown top-level keys, with none of ftune's,
// make a file another trainer's config rather than an ftune run file
// with slips: a single misplaced key is not told that.
const flatConfig = 3

// decoder walks a YAML node tree and the RunConfig type together.
type decoder struct {
	cfg   *RunConfig
	where func(n *yaml.Node) string
	// written says ftune wrote the file (RunConfig.Chose).
	written bool
	// lines, for a converted file (Conversion.Write), are its lines: a
	// key whose line ends in the mark (convertedMarkRE) holds a value set in
	// the other trainer's config, which counts as chosen (Chose).
	lines []string
	// topKnown and topUnknown count the top level's keys: a file of
	// another trainer's flat keys is told so once (flatConfig).
	topKnown, topUnknown int
	errs                 ErrorList
	// via, while a merged value is decoded, says which `<<` merged it.
	via string
}

func (d *decoder) fail(n *yaml.Node, path string, kind error, format string, args ...any) {
	d.failVia(n, d.via, path, kind, format, args...)
}

// failVia is fail for a node reached through merge keys: via, when not
// "", says which `<<` brought it, since its line is in the merged block.
func (d *decoder) failVia(n *yaml.Node, via, path string, kind error, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if via != "" {
		msg += " (" + via + ")"
	}
	d.errs = append(d.errs, &FieldError{Where: d.where(n), Path: path, Msg: msg, Kind: kind})
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
// its elements) is a file path in which ~ and environment variables
// expand (ExpandPath).
func (d *decoder) value(v reflect.Value, n *yaml.Node, path string, expand bool) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	d.cfg.setSource(path, d.where(n), d.written)
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
	for _, e := range d.entries(n, path) {
		k, val := e.k, e.v
		key := k.Value
		p := join(path, key)
		if path == "" && strings.HasPrefix(key, "x-") {
			continue // a block kept for its anchors (see entries)
		}
		fi, ok := index[key]
		if _, gone := retiredKeys[p]; !ok && gone {
			d.cfg.retired(p, d.where(k))
			continue
		}
		if path == "" && ok {
			d.topKnown++
		}
		if !ok {
			if path == "" {
				d.topUnknown++
			}
			where := "at the top level"
			if path != "" {
				where = "in " + path
			}
			hint := unknownKeyHint(key, path, names)
			if val.Anchor != "" && hint == "" {
				hint = fmt.Sprintf(" (a block kept only for its anchor &%s goes under a top-level key starting with x-, e.g. x-%s: &%s ..., which is ignored)", val.Anchor, key, val.Anchor)
			}
			if e.via != "" {
				where += " (" + e.via + ")"
			}
			d.failVia(k, "", "", ErrUnknownKey, "unknown key `%s` %s%s", key, where, hint)
			continue
		}
		f := t.Field(fi)
		outer, written := d.via, d.written
		if e.via != "" {
			d.via = e.via
		}
		if d.marked(k) {
			d.written = false
		}
		d.value(v.Field(fi), val, p, f.Tag.Get("path") != "")
		d.via, d.written = outer, written
	}
}

// marked says key k's line, in a converted file, ends in the mark
// convertedMarkRE matches: its value came from the other trainer's config.
func (d *decoder) marked(k *yaml.Node) bool {
	if d.lines == nil || k.Line < 1 || k.Line > len(d.lines) {
		return false
	}
	return convertedMarkRE.MatchString(d.lines[k.Line-1])
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
	for _, e := range d.entries(n, path) {
		k := e.k
		elem := reflect.New(v.Type().Elem()).Elem()
		p := join(path, k.Value)
		outer := d.via
		if e.via != "" {
			d.via = e.via
		}
		d.value(elem, e.v, p, false)
		d.via = outer
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

// entry is one key of a mapping once merge keys are expanded; via says,
// for a merged key, which `<<` brought it ("" for a key written there).
type entry struct {
	k, v *yaml.Node
	via  string
}

// entries lists the keys of mapping n with YAML 1.1 merge keys expanded:
// `<<: *base` (or `<<: [*a, *b]`) adds the keys of the mappings named that
// the mapping does not set itself; of several, the earlier wins; merges
// nest. A key written twice in one mapping is refused (yaml would keep
// the last, silently). Each mapping is expanded once however often it is
// named, so aliases cannot make the walk grow past the document's size
// (billion laughs).
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var out []entry
	have := map[string]bool{}
	visited := map[*yaml.Node]bool{}
	var walk func(m *yaml.Node, via string)
	walk = func(m *yaml.Node, via string) {
		if visited[m] {
			return
		}
		visited[m] = true
		seen := map[string]int{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, val := m.Content[i], m.Content[i+1]
			if line, dup := seen[k.Value]; dup {
				d.failVia(k, via, join(path, k.Value), ErrBadValue, "set twice (first at line %d)", line)
				continue
			}
			seen[k.Value] = k.Line
			if isMerge(k) {
				merges = append(merges, k, val)
				continue
			}
			if !have[k.Value] {
				have[k.Value] = true
				out = append(out, entry{k: k, v: val, via: via})
			}
		}
		for i := 0; i < len(merges); i += 2 {
			k, val := merges[i], resolve(merges[i+1])
			at := fmt.Sprintf("merged by `<<` at line %d", k.Line)
			if via != "" {
				at = fmt.Sprintf("%s, through `<<` at line %d", via, k.Line)
			}
			sources := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				sources = val.Content
			}
			for _, src := range sources {
				src = resolve(src)
				if src.Kind != yaml.MappingNode {
					d.failVia(k, via, path, ErrBadValue, "`<<` merges the keys of a section (<<: *name, or <<: [*a, *b]), got %s", describe(src))
					continue
				}
				walk(src, at)
			}
		}
	}
	walk(n, d.via)
	return out
}

// isMerge says k is YAML's merge key: a plain <<, not a quoted "<<".
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge"
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (d *decoder) sequence(v reflect.Value, n *yaml.Node, path string, expand bool) {
	if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
		if n.Style == 0 && strings.Contains(n.Value, ",") {
			d.commaList(v, n, path, expand)
			return
		}
		// targets: all-linear is the list [all-linear]: its element is
		// decoded, and its source recorded, under path[0] as the list
		// form's is, so that a check of the element names this line or
		// --set, not "set in code".
		s := reflect.MakeSlice(v.Type(), 1, 1)
		d.value(s.Index(0), n, path+"[0]", expand)
		v.Set(s)
		return
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, ",") {
			hint = fmt.Sprintf(" (write a list in brackets: [%s])", strings.Join(splitTrim(n.Value), ", "))
		}
		d.fail(n, path, ErrBadValue, "want a list, got %s%s", describe(n), hint)
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

// commaList reads an unquoted a,b for a list of strings as the list
// [a, b], spaces trimmed, as the command line's list flags (--subjects)
// read it: no module or subject name holds a comma. A path list
// (data.files) refuses it instead: a file name may hold a comma, so
// a.jsonl,b.jsonl could be one file or two; the message shows both
// spellings. A quoted "a,b" is always one element.
func (d *decoder) commaList(v reflect.Value, n *yaml.Node, path string, expand bool) {
	parts := splitTrim(n.Value)
	if expand {
		d.fail(n, path, ErrBadValue, "%q holds a comma, and a path may hold one too: write [%s] for %d paths, or [%q] for one", n.Value, strings.Join(parts, ", "), len(parts), n.Value)
		return
	}
	for _, p := range parts {
		if p == "" {
			d.fail(n, path, ErrBadValue, "%q has an empty element between commas (a,b is the list [a, b])", n.Value)
			return
		}
	}
	s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
	for i, p := range parts {
		e := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p, Line: n.Line, Column: n.Column}
		d.value(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i), expand)
	}
	v.Set(s)
}

// splitTrim splits s at commas and trims spaces around each part.
func splitTrim(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
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
			if s, err = ExpandPath(s); err != nil {
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

// ExpandPath is what a path key's value becomes (the keys tagged
// path:"1"): a leading ~ or ~/ is the home directory (os.UserHomeDir),
// as a shell expands it, then environment variables expand (ExpandEnv).
// Only the text as written is tilde-expanded, before the variables, so a
// variable whose value starts with ~ stays as it is (as in a shell). A
// ~user form is refused rather than read as a folder named ~user in the
// working directory: ./~name is the spelling of such a name. A NUL byte
// is refused: no file system path holds one, and the open that would
// fail later says "invalid argument" without naming the key.
func ExpandPath(s string) (string, error) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return "", fmt.Errorf("a NUL byte at byte %d: no path holds one (in %q)", i, s)
	}
	if strings.HasPrefix(s, "~") {
		rest := s[1:]
		if rest != "" && rest[0] != '/' && rest[0] != filepath.Separator {
			user, _, _ := strings.Cut(strings.ReplaceAll(rest, string(filepath.Separator), "/"), "/")
			return "", fmt.Errorf("~%s (another user's home directory) is not expanded, only ~ and ~/ (yours): write the folder out, or ./%s for a name that starts with ~ (in %q)", user, s, s)
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("~ is the home directory, which is not known: %v (in %q)", err, s)
		}
		if rest != "" {
			home = strings.TrimRight(home, "/"+string(filepath.Separator))
		}
		// The home directory is taken as it is: a $ in it is no variable.
		s = strings.ReplaceAll(home, "$", "$$") + rest
	}
	return ExpandEnv(s)
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
