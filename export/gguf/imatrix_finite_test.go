package gguf

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
)

// An importance matrix holding NaN or Inf (a model whose weights hold
// them) is refused naming the entry and the cause; nothing is written.
// One that is finite is written, and marked as an imatrix of ftune's.
func TestWriteImatrixRefusesNonFinite(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.gguf")
	if err := WriteImatrix(ok, &Imatrix{Entries: map[string]ImatrixEntry{"blk.0.attn_q.weight": {SumSquares: []float32{1, 2}, Counts: []float32{1}}}}); err != nil {
		t.Fatal(err)
	}
	if kind, mine := WrittenKind(ok); !mine || kind != KindImatrix {
		t.Errorf("WrittenKind = %q, %v; want %q, true", kind, mine, KindImatrix)
	}
	for _, e := range []ImatrixEntry{
		{SumSquares: []float32{1, float32(math.NaN())}, Counts: []float32{1}},
		{SumSquares: []float32{1, 2}, Counts: []float32{float32(math.Inf(1))}},
	} {
		path := filepath.Join(dir, "nan.gguf")
		err := WriteImatrix(path, &Imatrix{Entries: map[string]ImatrixEntry{"blk.0.attn_q.weight": e}})
		if !errors.Is(err, export.ErrNonFinite) || !strings.Contains(err.Error(), `"blk.0.attn_q.weight"`) || !strings.Contains(err.Error(), "weights") {
			t.Errorf("%v: err %v, want ErrNonFinite naming the entry and the model's weights", e, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%v: the refused matrix was written", e)
		}
	}
}
