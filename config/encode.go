package config

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const initHeader = `ftune run file. Every key is shown with its default value: delete what
you do not change. Train with: ftune train -c this.yaml
Override any key on the command line: --set training.optimizer.lr=1e-4
Paths expand a leading ~/ (your home) and $VARS, ${VARS}; $$ is a literal $.`

// resolvedHeader begins a run's config.yaml (Resolved).
const resolvedHeader = `The configuration an ftune run used: every setting as in effect.
Train again with: ftune train -c config.yaml`

// WriteInit writes a commented run file holding every default (what
// `ftune init` prints). Reading it back gives Default().
func WriteInit(w io.Writer) error {
	root := toNode(reflect.ValueOf(*Default()), true, false)
	root.HeadComment = initHeader
	return encode(w, root)
}

// Resolved is the configuration a run actually used, as YAML with no
// comment but its header: the run folder's config.yaml. Parse reads it
// back to equal settings (paths are stored already expanded).
func Resolved(cfg *RunConfig) ([]byte, error) {
	var buf bytes.Buffer
	root := toNode(reflect.ValueOf(*cfg), false, false)
	root.HeadComment = resolvedHeader
	if err := encode(&buf, root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encode(w io.Writer, n *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	return enc.Close()
}

// toNode builds the YAML tree of v; with docs, each key carries its doc tag
// as a comment. path says v (or its elements) is a path key's value,
// written so that reading it back (ExpandPath) gives it as it is: a $ as
// $$, a leading ~ as ./~ (the same file).
func toNode(v reflect.Value, docs, path bool) *yaml.Node {
	if v.Type() == durationType {
		return str(time.Duration(v.Int()).String())
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			k := str(name)
			if docs {
				k.HeadComment = wrap(f.Tag.Get("doc"), 76)
			}
			n.Content = append(n.Content, k, toNode(v.Field(i), docs, f.Tag.Get("path") != ""))
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content, str(k), toNode(v.MapIndex(reflect.ValueOf(k)), false, false))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			n.Content = append(n.Content, toNode(v.Index(i), false, path))
		}
		return n
	case reflect.String:
		s := v.String()
		if path {
			s = strings.ReplaceAll(s, "$", "$$")
			if strings.HasPrefix(s, "~") {
				s = "./" + s
			}
		}
		return str(s)
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}
	case reflect.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case reflect.Uint64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v.Uint(), 10)}
	case reflect.Float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(v.Float())}
	}
	// Unreachable for RunConfig's field types; a new type must be added above.
	return str(fmt.Sprint(v.Interface()))
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// formatFloat writes the shortest form that reads back exactly, and that
// YAML resolves as a float (16 would read as an int, so 16.0).
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// wrap breaks a comment into lines of at most width characters.
func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
