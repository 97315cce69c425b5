package train_test

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestLineSinkZeroValue: a zero LineSink prints to standard output rather
// than panicking on its nil writer.
func TestLineSinkZeroValue(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	err = train.LineSink{}.Log(3, train.Metrics{"train/loss": 1.5, "train/lr": 1e-3})
	w.Close()
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	if !strings.Contains(string(out), "step     3  loss 1.5000") {
		t.Errorf("printed %q", out)
	}
}
