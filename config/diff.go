package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Change is one leaf whose value differs between two configurations.
type Change struct {
	Path     string // dotted key, e.g. training.max_steps
	From, To string // the values as YAML would show them
}

func (c Change) String() string { return c.Path + ": " + c.From + " → " + c.To }

// Diff lists the leaves whose values differ from a to b, in the order of
// the schema (an empty list and an absent one are the same).
func Diff(a, b *RunConfig) []Change {
	var out []Change
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	return out
}

func diffValue(a, b reflect.Value, path string, out *[]Change) {
	if a.Kind() == reflect.Struct && a.Type() != durationType {
		for i := 0; i < a.NumField(); i++ {
			name := yamlName(a.Type().Field(i))
			if name == "" {
				continue
			}
			diffValue(a.Field(i), b.Field(i), join(path, name), out)
		}
		return
	}
	if (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, Change{Path: path, From: showValue(a), To: showValue(b)})
	}
}

// showValue writes a leaf in flow YAML: 3, true, cosine, [a, b], {a: 1}, 30m0s.
func showValue(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return v.Interface().(Duration).String()
	case v.Kind() == reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = showValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case v.Kind() == reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		var parts []string
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+showValue(v.MapIndex(reflect.ValueOf(k))))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}
