package recipe

import (
	"testing"

	"github.com/ftune/ftune/data/prep"
)

// TestComparedConfig: workers compare every key of the resolved config
// but the paths to content compared otherwise (model, data), rank 0's run
// folder and the device's index; a learning rate that differs is a
// difference, named by its key.
func TestComparedConfig(t *testing.T) {
	yaml := func(path, files, out, device, lr string) Options {
		return Options{Config: []byte("model:\n  path: " + path + "\ndata:\n  files: [" + files + "]\n  max_length: 256\ntraining:\n  device: " + device +
			"\n  optimizer:\n    lr: " + lr + "\n  tracking:\n    output_dir: " + out + "\n")}
	}
	a, err := yaml("/node0/base", "/node0/d.jsonl", "/runs", "cuda:0", "0.002").comparedConfig()
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml("/node1/base", "/node1/d.jsonl", "/elsewhere", "cuda:1", "0.002").comparedConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 || a["training.device"] != "cuda" || a["data.max_length"] != "256" || a["training.optimizer.lr"] != "0.002" {
		t.Errorf("compared keys %v; want data.max_length, training.device (its kind) and training.optimizer.lr", a)
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %q and %q on workers that differ only in what may differ", k, v, b[k])
		}
	}
	c, _ := yaml("/node0/base", "/node0/d.jsonl", "/runs", "cuda:0", "0.02").comparedConfig()
	if c["training.optimizer.lr"] != "0.02" {
		t.Errorf("lr 0.02 compared as %q", c["training.optimizer.lr"])
	}
	// Without a resolved config (Run called directly) the options are
	// compared, less the same per-worker ones.
	o, err := Options{ModelDir: "/node0", LR: 0.002, Device: "cuda:1"}.comparedConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o["ModelDir"]; ok || o["LR"] != "0.002" || o["Device"] != "cuda" {
		t.Errorf("compared options: ModelDir %q, LR %q, Device %q; want no ModelDir, 0.002, cuda", o["ModelDir"], o["LR"], o["Device"])
	}
}

// TestDataDigest: the data's digest is the same for the same rows and
// differs for rows in another order, another label, or another subject.
func TestDataDigest(t *testing.T) {
	rows := func(order ...int32) []prep.Row {
		var out []prep.Row
		for _, i := range order {
			out = append(out, prep.Row{InputIDs: []int32{i, i + 1}, Learnt: []bool{false, true}})
		}
		return out
	}
	base := (&dataset{subjects: []string{"s"}, train: rows(1, 2, 3)}).digest()
	if again := (&dataset{subjects: []string{"s"}, train: rows(1, 2, 3)}).digest(); again != base {
		t.Errorf("the same data: digests %s and %s", base, again)
	}
	relabelled := rows(1, 2, 3)
	relabelled[2].Learnt[0] = true
	for name, d := range map[string]*dataset{
		"order":   {subjects: []string{"s"}, train: rows(3, 2, 1)},
		"label":   {subjects: []string{"s"}, train: relabelled},
		"subject": {subjects: []string{"t"}, train: rows(1, 2, 3)},
		"split":   {subjects: []string{"s"}, train: rows(1, 2), val: rows(3)},
	} {
		if got := d.digest(); got == base {
			t.Errorf("%s differs, the digest does not: %s", name, got)
		}
	}
}
