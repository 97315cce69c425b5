package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Apply applies --set overrides in order, each "dotted.key.path=value",
// e.g. "training.optimizer.lr=2e-4", "training.lora.targets=[q_proj,v_proj]",
// "data.weights.math=2". The value is read as YAML (typed like the field;
// ~ and environment variables expand in paths). For a list of names (targets,
// modules_to_save, subjects) a bare q_proj,v_proj is the list
// [q_proj, v_proj], as the list flags read it; data.files refuses a bare
// comma (a path may hold one) and asks for the [a, b] form. A later --set
// of the same path wins. Errors name the argument and, for an unknown key, suggest one.
func Apply(cfg *RunConfig, sets []string) error {
	var errs ErrorList
	for _, arg := range sets {
		if err := applyOne(cfg, arg, "--set "+arg); err != nil {
			if l, ok := err.(ErrorList); ok {
				errs = append(errs, l...)
			} else {
				errs = append(errs, err.(*FieldError))
			}
		}
	}
	return errs.err()
}

// ApplyFlag sets one key from a dedicated command-line flag, e.g.
// ApplyFlag(cfg, "--max-steps", "training.max_steps", "20"), so that an
// error names the flag the user typed rather than a --set.
func ApplyFlag(cfg *RunConfig, flag, path, value string) error {
	err := applyOne(cfg, path+"="+value, flag+" "+value)
	if l, ok := err.(ErrorList); ok {
		return l
	}
	if err != nil {
		return ErrorList{err.(*FieldError)}
	}
	return nil
}

func applyOne(cfg *RunConfig, arg, where string) error {
	key, value, ok := strings.Cut(arg, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return &FieldError{Where: where, Msg: "want key.path=value", Kind: ErrBadValue}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return &FieldError{Where: where, Path: key, Msg: "value is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Kind: ErrBadValue}
	}
	node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	if len(doc.Content) == 1 {
		node = doc.Content[0]
	}
	if _, gone := retiredKeys[key]; gone {
		cfg.retired(key, where)
		return nil
	}
	return setNode(cfg, key, node, where)
}

// setNode decodes node into the key at the dotted path key, as a run
// file's value is decoded (typed like the field); errors and the value's
// source name where. Apply and Convert both set keys through it.
func setNode(cfg *RunConfig, key string, node *yaml.Node, where string) error {
	d := &decoder{cfg: cfg, where: func(*yaml.Node) string { return where }}
	v := reflect.ValueOf(cfg).Elem()
	parts := strings.Split(key, ".")
	path := ""
	for i, part := range parts {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == durationType {
				break
			}
			f, names, ok := fieldByKey(v.Type(), part)
			if !ok {
				in := "at the top level"
				if path != "" {
					in = "in " + path
				}
				return &FieldError{Where: where, Msg: fmt.Sprintf("unknown key `%s` %s%s", part, in, didYouMean(suggestPath(part, path, names, parts[i+1:]))), Kind: ErrUnknownKey}
			}
			v, path = v.FieldByIndex(f.Index), join(path, part)
			if i == len(parts)-1 {
				d.value(v, node, path, f.Tag.Get("path") != "")
				return d.errs.err()
			}
			continue
		case reflect.Map:
			// The rest of the key is the map key (subject names may hold dots).
			mk := strings.Join(parts[i:], ".")
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(elem, node, join(path, mk), false)
			if d.errs != nil {
				return d.errs.err()
			}
			v.SetMapIndex(reflect.ValueOf(mk), elem)
			return nil
		}
		return &FieldError{Where: where, Path: path, Msg: fmt.Sprintf("is a single value; it has no key `%s`", part), Kind: ErrUnknownKey}
	}
	return nil
}

// suggestPath proposes a replacement for an unknown element of a --set
// path; the elements after it are kept, so training.lr=... suggests
// training.optimizer.lr and training.lora.rr suggests training.lora.r.
func suggestPath(part, section string, names []string, rest []string) string {
	s := suggest(part, section, names)
	if s == "" {
		return ""
	}
	if !strings.Contains(s, ".") {
		s = join(section, s)
	}
	if len(rest) > 0 {
		s += "." + strings.Join(rest, ".")
	}
	return s
}

// fieldByKey finds the field whose yaml key is name, and lists the keys.
func fieldByKey(t reflect.Type, name string) (reflect.StructField, []string, bool) {
	var names []string
	var found reflect.StructField
	ok := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		n := yamlName(f)
		if n == "" {
			continue
		}
		names = append(names, n)
		if n == name {
			found, ok = f, true
		}
	}
	return found, names, ok
}
