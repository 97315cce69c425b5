package config

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

// TestDataColumns: data.columns maps a shape's columns to the fields of
// the data files' records (LLaMA-Factory's dataset_info.json columns,
// Axolotl's field_instruction), as a subject folder's subject.yaml
// columns do. It is read from a run file and --set, written back into a
// run's config.yaml, and refused, naming its line, where no data file
// reads it (a subject root: its folders' subject.yaml map theirs).
func TestDataColumns(t *testing.T) {
	want := map[string]string{"instruction": "question", "input": "context", "output": "answer"}
	file := "data:\n  files: [qa.jsonl]\n  shape: alpaca\n  columns: {instruction: question, input: context, output: answer}\n"
	cfg, err := Parse([]byte(file), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(cfg.Data.Columns, want) {
		t.Fatalf("data.columns %v, want %v", cfg.Data.Columns, want)
	}
	if got := cfg.Where("data.columns"); got != "run.yaml:4" {
		t.Errorf("data.columns comes from %q, want run.yaml:4", got)
	}

	// --set, a whole map or one entry.
	set := Default()
	if err := Apply(set, []string{"data.files=[qa.jsonl]", "data.shape=chat", "data.columns={messages: dialog}", "data.columns.role=speaker"}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"messages": "dialog", "role": "speaker"}; !maps.Equal(set.Data.Columns, want) {
		t.Fatalf("--set: data.columns %v, want %v", set.Data.Columns, want)
	}

	// A run's config.yaml holds it, and reads back the same.
	b, err := Resolved(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(back.Data.Columns, want) {
		t.Fatalf("written and read back: %v, want %v\n%s", back.Data.Columns, want, b)
	}
	var init bytes.Buffer
	if err := WriteInit(&init); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(init.String(), "columns:") {
		t.Errorf("ftune init does not write data.columns:\n%s", init.String())
	}

	// Without a shape, the mapping names nobody's columns.
	noShape, err := Parse([]byte("data:\n  files: [qa.jsonl]\n  columns: {instruction: question}\n"), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := noShape.Validate(); err == nil || !strings.Contains(err.Error(), "run.yaml:3: data.columns: names the fields of a shape's columns: set data.shape too") {
		t.Fatalf("data.columns without data.shape: %v", err)
	}

	// A subject root: its folders map their columns in subject.yaml.
	root, err := Parse([]byte("data:\n  root: /subjects\n  shape: alpaca\n  columns:\n    instruction: question\n"), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = root.Validate()
	if err == nil || !strings.Contains(err.Error(), "run.yaml:5: data.columns: applies to data.files only") || !strings.Contains(err.Error(), "subject.yaml") {
		t.Fatalf("data.columns with a subject root: %v", err)
	}
}

// TestOtherTrainersColumns: Axolotl's field_instruction and
// message_property_mappings, written at the top of a run file, point at
// data.columns.
func TestOtherTrainersColumns(t *testing.T) {
	for _, key := range []string{"field_instruction", "message_property_mappings", "field_messages"} {
		_, err := Parse([]byte("data:\n  "+key+": question\n"), "run.yaml")
		if err == nil || !strings.Contains(err.Error(), "unknown key `"+key+"` in data") || !strings.Contains(err.Error(), "data.columns") {
			t.Errorf("%s: %v", key, err)
		}
	}
}
