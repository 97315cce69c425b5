package recipe

import (
	"context"
	"github.com/ftune/ftune/data/chat"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// subjectWithTemplate copies the us-history train file into a subject
// folder whose subject.yaml names template.
func subjectWithTemplate(t *testing.T, template string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "us-history")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(subjects, "us-history", "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train.jsonl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "subject.yaml"), []byte("template: "+template+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSubjectTemplate: a subject.yaml template renders that subject's
// rows (they differ from the model's ChatML), relative .jinja files are
// found in the subject folder, an explicit data.template overrides it
// (said in the log), and a bad name is an error naming subject.yaml.
func TestSubjectTemplate(t *testing.T) {
	o := dataOptions()
	o.Pack = false
	o.DataRoot = subjectWithTemplate(t, "chatml") // the model's own: nothing changes
	same, log := loadTestData(t, o)
	if strings.Contains(log, "template") {
		t.Errorf("the model's own template was reported as a change: %s", log)
	}
	o.DataRoot = subjectWithTemplate(t, "llama3")
	ll, log := loadTestData(t, o)
	if !strings.Contains(log, `rendered with the template "llama3" of its subject.yaml`) {
		t.Errorf("log: %s", log)
	}
	if slices.Equal(ll.train[0].InputIDs, same.train[0].InputIDs) && slices.Equal(ll.val[0].InputIDs, same.val[0].InputIDs) {
		t.Fatal("rows rendered with llama3 equal the ChatML rows")
	}

	root := subjectWithTemplate(t, "mine.jinja")
	src := "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
	if err := os.WriteFile(filepath.Join(root, "us-history", "mine.jinja"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	o.DataRoot = root
	if _, log := loadTestData(t, o); !strings.Contains(log, `template "mine.jinja"`) {
		t.Errorf("relative .jinja: %s", log)
	}

	o.DataRoot, o.Template = subjectWithTemplate(t, "llama3"), "chatml"
	over, log := loadTestData(t, o)
	if !strings.Contains(log, "data.template chatml overrides") || !slices.Equal(over.train[0].InputIDs, same.train[0].InputIDs) {
		t.Errorf("data.template did not override subject.yaml: %s", log)
	}

	o.DataRoot, o.Template = subjectWithTemplate(t, "no-such-template"), ""
	tp, _ := LoadText(tinyBase, 0)
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "subject.yaml") || !strings.Contains(err.Error(), "no-such-template") {
		t.Fatalf("bad template: %v", err)
	}
}

// TestAdaptersCarryTheirSubjectsTemplates: per-subject adapters carry the
// template their subject was rendered with; one shared adapter over a
// subject with its own carries the run's, and the run says so.
func TestAdaptersCarryTheirSubjectsTemplates(t *testing.T) {
	llama3, err := chat.Builtin("llama3")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode    Mode
		adapter string
		want    string
	}{
		{PerSubject, "adapter", llama3.Source()}, // one subject: its adapter is RUN/adapter
		{Shared, "adapter", tp.tmpl.Source()},
	} {
		o := quickOptions(t, "subject-template")
		o.DataRoot, o.Subjects, o.Mode, o.Steps, o.SeqLen = subjectWithTemplate(t, "llama3"), nil, c.mode, 1, 256
		var log strings.Builder
		o.Log = &log
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(res.RunDir, c.adapter, chat.TemplateFile))
		if err != nil || string(got) != c.want {
			t.Errorf("%s: the adapter's template: %v, %.60q", c.mode, err, got)
		}
		if said := strings.Contains(log.String(), "us-history were rendered with their own chat templates"); said != (c.mode == Shared) {
			t.Errorf("%s: the note about the shared adapter's template said: %v\n%s", c.mode, said, log.String())
		}
	}
}
