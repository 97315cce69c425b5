package config

import (
	"reflect"
	"strings"
)

// leaf is one key of a run file that holds a value (not a section): its
// dotted path and its field.
type leaf struct {
	path  string
	field reflect.StructField
}

// leaves are RunConfig's value keys, in the order of its fields.
func leaves() []leaf {
	var out []leaf
	var walk func(ty reflect.Type, prefix string)
	walk = func(ty reflect.Type, prefix string) {
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			p := join(prefix, name)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, p)
				continue
			}
			out = append(out, leaf{p, f})
		}
	}
	walk(reflect.TypeOf(RunConfig{}), "")
	return out
}

// isStringList says whether the key holds a list of strings.
func (l leaf) isStringList() bool {
	return l.field.Type.Kind() == reflect.Slice && l.field.Type.Elem().Kind() == reflect.String
}

// runFile is a run file setting the key path to val as written, on its
// last line (the line number is the path's depth).
func runFile(path, val string) string {
	var b strings.Builder
	keys := strings.Split(path, ".")
	for d, k := range keys {
		b.WriteString(strings.Repeat("  ", d) + k + ":")
		if d == len(keys)-1 {
			b.WriteString(" " + val)
		}
		b.WriteString("\n")
	}
	return b.String()
}
