package parquet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/ftune/ftune/data/format"
)

type benchRow struct {
	Instruction string `parquet:"instruction"`
	Output      string `parquet:"output"`
}

// BenchmarkParquet measures what the checks before parquet-go reads a file
// cost beside reading it: "check" is checkFile alone, "read" the whole
// read (checks included) into examples. 50,000 alpaca rows of about 200
// bytes, per codec.
//
//	go test -run '^$' -bench Parquet ./data/format/parquet
func BenchmarkParquet(b *testing.B) {
	rows := make([]benchRow, 50_000)
	for i := range rows {
		rows[i] = benchRow{
			Instruction: fmt.Sprintf("Explain step %d of the titration of a weak acid with a strong base, and what the indicator shows.", i),
			Output:      fmt.Sprintf("At step %d the pH rises past the equivalence point; phenolphthalein turns pink near pH 8.2.", i),
		}
	}
	for _, codec := range []compress.Codec{&pq.Uncompressed, &pq.Snappy, &pq.Zstd, &pq.Gzip} {
		var buf bytes.Buffer
		w := pq.NewGenericWriter[benchRow](&buf, pq.Compression(codec))
		if _, err := w.Write(rows); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(b.TempDir(), "bench.parquet")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(codec.String()+"/check", func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := checkFile(f, int64(buf.Len()), p); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
		b.Run(codec.String()+"/read", func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				exs, _, err := format.ReadAll(p, format.Options{})
				if err != nil || len(exs) != len(rows) {
					b.Fatal(len(exs), err)
				}
			}
		})
	}
}
