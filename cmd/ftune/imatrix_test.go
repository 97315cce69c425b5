package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export/gguf"
)

// TestImatrixThroughCLI: `ftune imatrix` writes a matrix of tiny-base that
// `ftune export --imatrix` uses (its notes say so), refuses to write over
// a file it did not write (and keeps it with --force), and refuses what it
// cannot do with the reason.
func TestImatrixThroughCLI(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	text := filepath.Join(dir, "calibration.txt")
	var b strings.Builder
	for i := range 60 {
		b.WriteString("Question: Which element has atomic number " + string(rune('0'+i%10)) + "?\nAnswer: the one after it.\n\n")
	}
	if err := os.WriteFile(text, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "im.gguf")
	msg, err := run(t, "imatrix", "--text", text, "--ctx", "64", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "wrote "+out+": 42 weights") {
		t.Errorf("output %q", msg)
	}
	im, err := gguf.ReadImatrix(out)
	if err != nil {
		t.Fatal(err)
	}
	if im.ChunkSize != 64 || im.ChunkCount < 2 || im.Datasets[0] != text {
		t.Errorf("%d chunks of %d from %v", im.ChunkCount, im.ChunkSize, im.Datasets)
	}
	model := filepath.Join(dir, "q3.gguf")
	msg, err = run(t, "export", "--format", "gguf", "--quant", "q3_k_m", "--imatrix", out, "--out", model)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "weighed 42 of the 43 weights") {
		t.Errorf("export notes %q do not say what the matrix weighed", msg)
	}
	f, err := gguf.Read(model)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.String("quantize.imatrix.file"); got != out {
		t.Errorf("quantize.imatrix.file = %q", got)
	}
	f.Close()

	// --data renders the training data through the chat template.
	chem := filepath.Join("..", "..", "assets", "data", "subjects", "chemistry", "train.jsonl")
	msg, err = run(t, "imatrix", "--data", chem, "--ctx", "128", "--chunks", "4", "--out", out)
	if err != nil || !strings.Contains(msg, "4 chunks of 128 tokens from "+chem) {
		t.Fatalf("--data: %v\n%s", err, msg)
	}

	// A file the user owns is refused, then kept aside with --force.
	mine := filepath.Join(dir, "mine.gguf")
	if err := os.WriteFile(mine, []byte("my notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "imatrix", "--text", text, "--ctx", "64", "--out", mine); err == nil {
		t.Error("a file ftune did not write was replaced")
	}
	msg, err = run(t, "imatrix", "--text", text, "--ctx", "64", "--chunks", "1", "--out", mine, "--force")
	if err != nil || !strings.Contains(msg, "is kept at") {
		t.Fatalf("--force: %v\n%s", err, msg)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"imatrix", "--out", out}, "give one of --text"},
		{[]string{"imatrix", "--text", text, "--data", text, "--out", out}, "give one of --text"},
		{[]string{"imatrix", "--data", filepath.Join(dir, "none.jsonl"), "--out", out}, "none.jsonl"},
		{[]string{"imatrix", "--text", text, "--ctx", "0"}, "--ctx 0"},
		{[]string{"imatrix", "--text", text, "--ctx", "5000", "--out", out}, "1024 positions"},
		{[]string{"imatrix", "--text", filepath.Join(dir, "missing.txt"), "--out", out}, "missing.txt"},
		{[]string{"export", "--format", "gguf", "--quant", "q8_0", "--imatrix", out, "--out", filepath.Join(dir, "q8.gguf")}, "llama-quantize's mixes"},
		{[]string{"export", "--format", "gguf", "--quant", "q4_k_m", "--imatrix", text, "--out", filepath.Join(dir, "q4.gguf")}, "calibration.txt"},
	} {
		if msg, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v (%s), want one containing %q", c.args, err, msg, c.want)
		}
	}
}

// TestImatrixAndExportKeepEachOthersFiles: ftune imatrix refuses to write
// over a model that ftune exported (before the model runs), and a GGUF
// export over an importance matrix, each naming what the file is; a
// folder as --out is refused in imatrix's words.
func TestImatrixAndExportKeepEachOthersFiles(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	text := filepath.Join(dir, "calibration.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("Question: what is water made of?\nAnswer: hydrogen and oxygen.\n\n", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	im := filepath.Join(dir, "myimatrix.gguf")
	if err := gguf.WriteImatrix(im, &gguf.Imatrix{Entries: map[string]gguf.ImatrixEntry{"blk.0.attn_q.weight": {SumSquares: make([]float32, 256), Counts: []float32{1}}}}); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "mymodel.gguf")
	if msg, err := run(t, "export", "--format", "gguf", "--quant", "q8_0", "--out", model); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	files := map[string][]byte{}
	for _, p := range []string{im, model} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"imatrix", "--text", text, "--ctx", "64", "--out", model}, "imatrix: " + model + ": the file there is a GGUF model that ftune wrote, and this writes an importance matrix"},
		{[]string{"export", "--format", "gguf", "--out", im}, "export: " + im + ": the file there is an importance matrix that ftune wrote, and this writes a GGUF model"},
		{[]string{"imatrix", "--text", text, "--ctx", "64", "--out", dir}, "imatrix: " + dir + " is a folder, and this writes one file: name the file (for example " + filepath.Join(dir, "imatrix.gguf") + ")"},
	} {
		msg, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
		if strings.Contains(msg, "chunks") {
			t.Errorf("%v: the model ran before the refusal:\n%s", c.args, msg)
		}
	}
	for p, b := range files {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, b) {
			t.Errorf("%s changed", p)
		}
	}
}
