package parquet_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestParquetPositions: a parquet file has rows, not lines, so an error
// about a record names its row ("d.parquet: row 17:", 1-based, as the
// record number a CSV or JSONL error would give) and one about the whole
// file names no position, where both used to print as lines
// ("d.parquet:17:", "d.parquet:0:").
func TestParquetPositions(t *testing.T) {
	var rows []pqAlpaca
	for i := range 20 {
		rows = append(rows, pqAlpaca{Instruction: fmt.Sprint("q", i), Output: fmt.Sprint("a", i)})
	}
	rows[16].Output = "" // row 17
	p := writeParquet(t, rows)
	_, _, err := format.ReadAll(p, format.Options{})
	if !errors.Is(err, format.ErrBadValue) || !strings.HasPrefix(err.Error(), p+": row 17: ") || !strings.Contains(err.Error(), `field "output" is empty`) {
		t.Errorf("an empty output in row 17: %v, want it at %q", err, p+": row 17: ")
	}
	rows[16].Output = "a16"
	exs, _, err := format.ReadAll(writeParquet(t, rows), format.Options{})
	if err != nil || len(exs) != 20 {
		t.Fatalf("%d examples, %v", len(exs), err)
	}
	if !strings.HasSuffix(exs[16].Source, ".parquet: row 17") {
		t.Errorf("row 17's source is %q", exs[16].Source)
	}

	bad := filepath.Join(t.TempDir(), "bad.parquet")
	if err := os.WriteFile(bad, []byte("PAR1 this is not a parquet file PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = format.ReadAll(bad, format.Options{})
	if !errors.Is(err, format.ErrMalformed) || !strings.HasPrefix(err.Error(), bad+": ") || strings.Contains(err.Error(), ":0") {
		t.Errorf("a corrupt file: %v, want %q and no line", err, bad+": ")
	}
}
