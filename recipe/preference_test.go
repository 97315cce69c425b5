package recipe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writePreferences turns a subject's chat examples into preference
// records: the question as the prompt, its answer chosen, the answer
// spelt backwards rejected (doubled when that is the same: "9" → "99").
// A wrong answer drawn from the other examples would not do: it is some
// other record's chosen answer, so training would raise on its own
// questions what validation counts as rejected. chat false writes the
// text form (prompt, chosen, rejected strings).
func writePreferences(t *testing.T, dir, subject string, n int, chat bool) string {
	t.Helper()
	f, err := os.Open(filepath.Join(subjects, subject, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type msg struct{ Role, Content string }
	var qs, as []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(qs) < n {
		var rec struct{ Messages []msg }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		qs, as = append(qs, rec.Messages[0].Content), append(as, rec.Messages[1].Content)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range n {
		rs := []rune(as[i])
		slices.Reverse(rs)
		wrong := string(rs)
		if wrong == as[i] {
			wrong += as[i]
		}
		var rec any
		if chat {
			turn := func(role, content string) []map[string]string {
				return []map[string]string{{"role": role, "content": content}}
			}
			rec = map[string]any{"prompt": turn("user", qs[i]), "chosen": turn("assistant", as[i]), "rejected": turn("assistant", wrong)}
		} else {
			rec = map[string]string{"prompt": "Q: " + qs[i] + "\nA:", "chosen": " " + as[i], "rejected": " " + wrong}
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, subject+"-prefs.jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDPORun trains DPO on chemistry preferences (the right answer over
// another question's) and checks what a user sees: the validation pairs'
// DPO loss starts at log 2 (the adapter starts as the identity, so the
// policy is the reference), reward accuracy rises, the rewards reach the
// step metrics and the adapter is saved.
func TestDPORun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := quickOptions(t, "dpo")
	o.Subjects = nil
	o.DataRoot, o.DataFiles = "", []string{writePreferences(t, t.TempDir(), "chemistry", 120, true)}
	o.Objective, o.DPOBeta = ObjectiveDPO, 0.1
	o.Steps, o.BatchSize, o.LR, o.EvalEvery, o.EvalMaxBatches = 12, 4, 1e-3, 6, 0
	o.ValSplit = 0.2
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := log.String()
	if got := res.Before.Val["val/loss"]; math.Abs(got-math.Ln2) > 1e-6 {
		t.Errorf("DPO loss before training %.8f, want log 2 = %.8f (policy = reference)", got, math.Ln2)
	}
	if res.Before.Val["val/rewards/margins"] != 0 {
		t.Errorf("margin before training %g, want 0", res.Before.Val["val/rewards/margins"])
	}
	after := res.After.Val
	if after["val/loss"] >= res.Before.Val["val/loss"] || after["val/rewards/accuracies"] < 0.7 || after["val/rewards/margins"] <= 0 {
		t.Errorf("after %d steps: loss %.4f, reward accuracy %.3f, margin %.4f: DPO did not learn the preferences\n%s",
			res.Steps, after["val/loss"], after["val/rewards/accuracies"], after["val/rewards/margins"], out)
	}
	for _, want := range []string{"objective: DPO (sigmoid loss, beta 0.1)", "validation pairs: DPO loss", "data.packing: does not apply to preference pairs"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	metrics, err := os.ReadFile(filepath.Join(res.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"train/rewards/accuracies"`, `"train/rewards/margins"`, `"val/rewards/accuracies"`} {
		if !bytes.Contains(metrics, []byte(key)) {
			t.Errorf("metrics.jsonl has no %s", key)
		}
	}
	if res.Adapters["default"] == "" {
		t.Errorf("no adapter exported: %v", res.Adapters)
	}
	t.Logf("before: %v\nafter: %v", res.Before.Val, after)
}
