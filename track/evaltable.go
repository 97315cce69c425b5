package track

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// Evaluation metrics a run logs before and after training (recipe's
// logEval): eval_before/<key> and eval_after/<key>, where key is val/loss
// (all subjects), val/<subject>/loss, exact_match/<subject|all>,
// multiple_choice/<subject|all>, and under DPO val/rewards/accuracies and
// val/rewards/margins.
const (
	EvalBeforePrefix = "eval_before/"
	EvalAfterPrefix  = "eval_after/"
)

// evalColumns are the before/after table's metrics: a title and the key of
// a subject's value ("all" is every subject together).
var evalColumns = []struct {
	title string
	key   func(subject string) string
}{
	{"validation loss", func(s string) string {
		if s == "all" {
			return "val/loss"
		}
		return "val/" + s + "/loss"
	}},
	{"exact match", func(s string) string { return "exact_match/" + s }},
	{"multiple choice", func(s string) string { return "multiple_choice/" + s }},
	// A preference objective's (DPO's: its validation loss is the DPO
	// loss), for all subjects together only.
	{"reward accuracy", allOnly("val/rewards/accuracies")},
	{"reward margin", allOnly("val/rewards/margins")},
}

// allOnly is a column measured over every subject together: key for
// "all", nothing per subject.
func allOnly(key string) func(string) string {
	return func(s string) string {
		if s == "all" {
			return key
		}
		return "val/" + s + "/" + strings.TrimPrefix(key, "val/")
	}
}

// EvalTable is the evaluation before and after training, one row per
// subject ("all" first; a run of one subject has its row only), one
// before/after pair per metric.
type EvalTable struct {
	Metrics []string // column titles
	Rows    []EvalRow
}

// EvalRow is one subject's values; Before[i] and After[i] are Metrics[i]
// ("-" where not measured).
type EvalRow struct {
	Subject       string
	Before, After []string
}

// BeforeAfter builds the table from a run's final metrics. It is empty
// when the run logged no evaluation.
func BeforeAfter(final Values) EvalTable {
	subjects := map[string]bool{}
	for k := range final {
		var rest string
		switch {
		case strings.HasPrefix(k, EvalBeforePrefix):
			rest = k[len(EvalBeforePrefix):]
		case strings.HasPrefix(k, EvalAfterPrefix):
			rest = k[len(EvalAfterPrefix):]
		default:
			continue
		}
		switch parts := strings.Split(rest, "/"); {
		case rest == "val/loss":
			subjects["all"] = true
		case len(parts) == 3 && parts[0] == "val" && parts[2] == "loss":
			subjects[parts[1]] = true
		case len(parts) == 2 && (parts[0] == "exact_match" || parts[0] == "multiple_choice"):
			subjects[parts[1]] = true
		}
	}
	names := make([]string, 0, len(subjects))
	for s := range subjects {
		if s != "all" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	single := len(names) == 1 // "all" is that subject: one row, not two alike
	if subjects["all"] && !single {
		names = append([]string{"all"}, names...)
	}
	value := func(prefix string, col int, s string) string {
		k := evalColumns[col].key(s)
		if _, ok := final[prefix+k]; !ok && single {
			k = evalColumns[col].key("all")
		}
		return MetricText(final, prefix+k)
	}
	var t EvalTable
	var used []int
	for i, c := range evalColumns {
		for _, s := range names {
			if value(EvalBeforePrefix, i, s) != "-" || value(EvalAfterPrefix, i, s) != "-" {
				used = append(used, i)
				t.Metrics = append(t.Metrics, c.title)
				break
			}
		}
	}
	for _, s := range names {
		row := EvalRow{Subject: s}
		for _, i := range used {
			row.Before = append(row.Before, value(EvalBeforePrefix, i, s))
			row.After = append(row.After, value(EvalAfterPrefix, i, s))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// String is the table as text: "before → after" per metric.
func (t EvalTable) String() string {
	if len(t.Rows) == 0 {
		return ""
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  subject\t%s\n", strings.Join(t.Metrics, "\t"))
	for _, r := range t.Rows {
		cells := make([]string, len(r.Before))
		for i := range cells {
			cells[i] = r.Before[i] + " → " + r.After[i]
		}
		fmt.Fprintf(w, "  %s\t%s\n", r.Subject, strings.Join(cells, "\t"))
	}
	w.Flush()
	return b.String()
}
