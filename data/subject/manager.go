package subject

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/internal/fsutil"
)

// Split names a dataset split.
type Split string

const (
	Train Split = "train"
	Val   Split = "val"
	Test  Split = "test"
)

// Splits in report order.
var Splits = []Split{Train, Val, Test}

// splitOf maps a file stem to its split; "validation" and "dev" are the
// names Hugging Face datasets often use.
func splitOf(stem string) (Split, bool) {
	switch strings.ToLower(stem) {
	case "train":
		return Train, true
	case "val", "valid", "validation", "dev":
		return Val, true
	case "test":
		return Test, true
	}
	return "", false
}

// isMarkdown says whether a file is a Markdown document. A document is
// never a split's data, whatever its name: a docs tree's guide/train.md
// tells how to train, and a subject folder's README.md is its card.
func isMarkdown(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".markdown":
		return true
	}
	return false
}

// SplitOf says whether a file stem ("train", "validation", ...) names a
// split, and which.
func SplitOf(stem string) (Split, bool) { return splitOf(stem) }

// ConfigFile is the name of a subject's settings file.
const ConfigFile = "subject.yaml"

// Config is subject.yaml.
type Config struct {
	// Name defaults to the folder name.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Template names the chat template the subject's examples are rendered
	// with: a built-in ("chatml", "llama3", ...) or a .jinja file (relative
	// to the subject folder); empty or "auto" means the run's. An explicit
	// data.template of the run overrides it.
	Template string `yaml:"template"`
	// Weight is the sampling weight when interleaving subjects (default 1).
	Weight *float64 `yaml:"weight"`
	// System, when set, is prepended as a system message to chat examples
	// that have none.
	System string `yaml:"system"`
	// Shape and Columns map files whose fields are not auto-detected.
	Shape   string            `yaml:"shape"`
	Columns map[string]string `yaml:"columns"`
	// Phrasings are groups of equivalent instruction templates with {slot}
	// placeholders, for data.augment.rephrase (augment.Rotator).
	Phrasings [][]string `yaml:"phrasings"`
}

// Subject is one discovered subject folder.
type Subject struct {
	ID     int // index in Manager.Subjects (sorted by name): the row's subject id
	Name   string
	Dir    string
	Config Config
	Files  map[Split]string
}

// WeightOrDefault is the sampling weight.
func (s *Subject) WeightOrDefault() float64 {
	if s.Config.Weight == nil {
		return 1
	}
	return *s.Config.Weight
}

// Manager is a data root with one folder per subject (SubjectDatasetManager).
type Manager struct {
	Root     string
	Subjects []*Subject
}

// SubjectDatasetManager is the name the design documents use for Manager.
type SubjectDatasetManager = Manager

// ErrNoSubjects: the root holds no subject folder.
var ErrNoSubjects = errors.New("no subject folders")

// Open discovers the subjects under root. A folder is a subject when it
// holds subject.yaml or a train/val/test file of a supported format
// (Markdown is never one: a document named train.md is a document).
func Open(root string) (*Manager, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("subject root: %w", err)
	}
	m := &Manager{Root: root}
	names := map[string]string{}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s, ok, err := openSubject(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if other, dup := names[s.Name]; dup {
			return nil, fmt.Errorf("subject name %q used by %s and %s", s.Name, other, s.Dir)
		}
		names[s.Name] = s.Dir
		m.Subjects = append(m.Subjects, s)
	}
	if len(m.Subjects) == 0 {
		return nil, fmt.Errorf("%s: %w (want folders holding subject.yaml and train/val/test files)", root, ErrNoSubjects)
	}
	sort.Slice(m.Subjects, func(i, j int) bool { return m.Subjects[i].Name < m.Subjects[j].Name })
	for i, s := range m.Subjects {
		s.ID = i
	}
	return m, nil
}

// OpenSubject opens one subject folder (train/val/test files and an
// optional subject.yaml). ok is false when dir is not a subject folder.
func OpenSubject(dir string) (s *Subject, ok bool, err error) { return openSubject(dir) }

func openSubject(dir string) (*Subject, bool, error) {
	s := &Subject{Name: filepath.Base(dir), Dir: dir, Files: map[Split]string{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	hasConfig := false
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if name == ConfigFile {
			hasConfig = true
			continue
		}
		if isMarkdown(name) {
			continue // a document (a docs tree's train.md), never split data
		}
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		split, ok := splitOf(stem)
		if !ok {
			continue
		}
		if _, err := format.KindOf(name); err != nil {
			return nil, false, fmt.Errorf("subject %s: %w", dir, err)
		}
		if prev, dup := s.Files[split]; dup {
			return nil, false, fmt.Errorf("subject %s: two %s files, %s and %s: keep one", dir, split, filepath.Base(prev), name)
		}
		s.Files[split] = filepath.Join(dir, name)
	}
	if !hasConfig && len(s.Files) == 0 {
		return nil, false, nil
	}
	if hasConfig {
		if err := s.readConfig(filepath.Join(dir, ConfigFile)); err != nil {
			return nil, false, err
		}
	}
	if len(s.Files) == 0 {
		return nil, false, fmt.Errorf("subject %s: no train, val or test file", dir)
	}
	return s, true, nil
}

func (s *Subject) readConfig(path string) error {
	// Regular files only, bounded: a named pipe blocked the open, where
	// no Ctrl-C reaches.
	data, err := fsutil.ReadFileLimit(path, 1<<20)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key must not be silently ignored
	// An empty file (io.EOF) means all defaults.
	if err := dec.Decode(&s.Config); err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", path, format.ExplainYAML(data, err))
	}
	if s.Config.Name != "" {
		s.Name = s.Config.Name
	}
	if w := s.Config.Weight; w != nil && (*w < 0 || *w != *w) {
		return fmt.Errorf("%s: weight %v: expected a number >= 0", path, *w)
	}
	if _, err := s.mapping(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// mapping builds the format mapping from shape and columns.
func (s *Subject) mapping() (format.Mapping, error) {
	shape, err := format.ParseShape(s.Config.Shape)
	if err != nil {
		return format.Mapping{}, err
	}
	return ColumnMapping(shape, s.Config.Columns)
}

// ColumnError is a columns entry refused: Key names it ("" when the
// columns as a whole are, as without a shape).
type ColumnError struct {
	Key, Msg string
}

func (e *ColumnError) Error() string { return "columns: " + e.Msg }

// columnKeys are the keys of columns, in the order the error lists them.
var columnKeys = []string{"instruction", "input", "output", "messages", "role", "content", "text", "prompt", "response", "chosen", "rejected", "completion", "label", "system", "tools"}

// ColumnMapping is the format mapping of a shape whose columns are named
// by columns (key: the record's field): a subject.yaml's shape and
// columns, and a run's data.shape and data.columns for its data files,
// checked alike. An unknown key, a key the shape does not read (chosen
// under shape chat), a key naming no field, and columns without a shape
// are refused with a *ColumnError: each would map nothing while the user
// thinks it renamed, the column read under its default name.
func ColumnMapping(shape format.Shape, columns map[string]string) (format.Mapping, error) {
	m := format.Mapping{Shape: shape}
	fields := map[string]*string{
		"instruction": &m.Instruction, "input": &m.Input, "output": &m.Output,
		"messages": &m.Messages, "role": &m.Role, "content": &m.Content, "text": &m.Text,
		"prompt": &m.Prompt, "response": &m.Response, "system": &m.System, "tools": &m.Tools,
		// Preference records (shape preference): prompt, chosen and
		// rejected, and role and content for their lists of messages;
		// unpaired ones (shape unpaired_preference): prompt, completion
		// and label.
		"chosen": &m.Chosen, "rejected": &m.Rejected, "completion": &m.Completion, "label": &m.Label,
	}
	keys := slices.Sorted(maps.Keys(columns))
	for _, k := range keys {
		if _, ok := fields[k]; !ok {
			return m, &ColumnError{k, fmt.Sprintf("unknown key %q (want %s or %s)", k, strings.Join(columnKeys[:len(columnKeys)-1], ", "), columnKeys[len(columnKeys)-1])}
		}
	}
	if len(columns) > 0 && shape == format.ShapeAuto {
		return m, &ColumnError{"", "columns need a shape"}
	}
	for _, k := range keys {
		if want := shapeColumns[shape]; !slices.Contains(want, k) {
			return m, &ColumnError{k, fmt.Sprintf("shape %v does not read %q (its columns: %s)", shape, k, strings.Join(want, ", "))}
		}
		if strings.TrimSpace(columns[k]) == "" {
			return m, &ColumnError{k, fmt.Sprintf("%q names no field: give the record's field that holds it, or leave the key out (the shape reads its own name)", k)}
		}
		*fields[k] = columns[k]
	}
	// Two parts read from one field: {instruction: q, output: q} would
	// teach the model to echo its prompt.
	for i, k := range keys {
		for _, other := range keys[:i] {
			if columns[k] == columns[other] {
				return m, &ColumnError{k, fmt.Sprintf("%q and %q both name the field %q: each part of the record is read from a field of its own", other, k, columns[k])}
			}
		}
	}
	return m, nil
}

// shapeColumns are the columns keys each shape reads (format.Mapping's
// fields for it).
var shapeColumns = map[format.Shape][]string{
	format.ShapeAlpaca:             {"instruction", "input", "output", "system", "tools"},
	format.ShapeChat:               {"messages", "role", "content", "system", "tools"},
	format.ShapeShareGPT:           {"messages", "role", "content", "system", "tools"},
	format.ShapeCompletion:         {"text"}, // a completion has no system message, no tools
	format.ShapeInputOutput:        {"prompt", "response", "system", "tools"},
	format.ShapePreference:         {"prompt", "chosen", "rejected", "role", "content", "system", "tools"},
	format.ShapeUnpairedPreference: {"prompt", "completion", "label", "role", "content", "system", "tools"},
}

// TemplatePath is the subject's template as UseTemplate-style name: a
// built-in name, or a .jinja file resolved against the subject folder; ""
// when the subject uses the run's template.
func (s *Subject) TemplatePath() string {
	t := s.Config.Template
	switch {
	case t == "" || t == "auto":
		return ""
	case strings.HasSuffix(t, ".jinja") && !filepath.IsAbs(t):
		return filepath.Join(s.Dir, t)
	}
	return t
}

// Subject returns the subject of that name.
func (m *Manager) Subject(name string) (*Subject, bool) {
	for _, s := range m.Subjects {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Load reads a split of the subject. opts.Mapping is replaced by the
// subject's own when subject.yaml sets a shape. A missing split gives
// os.ErrNotExist.
func (s *Subject) Load(split Split, opts format.Options) ([]format.Example, format.Report, error) {
	path, ok := s.Files[split]
	if !ok {
		return nil, format.Report{}, fmt.Errorf("subject %s: no %s file: %w", s.Name, split, os.ErrNotExist)
	}
	if m, err := s.mapping(); err != nil {
		return nil, format.Report{}, err
	} else if m.Shape != format.ShapeAuto {
		opts.Mapping = m
	}
	exs, rep, err := format.ReadAll(path, opts)
	if err != nil {
		return nil, rep, fmt.Errorf("subject %s: %w", s.Name, err)
	}
	if s.Config.System != "" {
		for i := range exs {
			if exs[i].IsChat() && exs[i].Messages[0].Role != format.RoleSystem {
				exs[i].Messages = append([]format.Message{{Role: format.RoleSystem, Content: s.Config.System}}, exs[i].Messages...)
			}
		}
	}
	return exs, rep, nil
}
