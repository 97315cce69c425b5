package format

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExplainYAMLTab: a tab in a YAML data file (subject.yaml) gave
// "found character that cannot start any token" without saying tab.
func TestExplainYAMLTab(t *testing.T) {
	data := []byte("name: geo\ncolumns:\n\tprompt: q\n")
	var v map[string]any
	err := yaml.Unmarshal(data, &v)
	if err == nil {
		t.Fatal("the YAML parser accepted a tab indentation")
	}
	got := ExplainYAML(data, err)
	if !strings.Contains(got.Error(), "line 3 column 1: a tab character") || !errors.Is(got, err) {
		t.Errorf("got %v", got)
	}
	other := errors.New("yaml: line 1: did not find expected key")
	if ExplainYAML(data, other) != other {
		t.Error("an unrelated error was rewritten")
	}
}
