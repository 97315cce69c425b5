package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestParquetNeedsItsPackage: without data/format/parquet linked in, a
// .parquet file is ErrUnsupported naming the import that adds it (format
// itself no longer depends on parquet-go).
func TestParquetNeedsItsPackage(t *testing.T) {
	p := writeFile(t, "d.parquet", "PAR1")
	_, _, err := ReadAll(p, Options{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `import _ "github.com/ftune/ftune/data/format/parquet"`) {
		t.Errorf("got %v", err)
	}
}

// TestNoParquetDependency: a program that only generates text links
// data/format (through recipe); it must not link parquet-go.
func TestNoParquetDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "parquet") {
			t.Errorf("data/format depends on %s", dep)
		}
	}
}

// genReader produces n JSONL or JSON-array records on the fly, so the test
// measures the reader's memory and not the input's.
type genReader struct {
	n, i  int
	array bool
	buf   []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.n {
		switch {
		case g.i == g.n:
			if g.array {
				g.buf = append(g.buf, "\n]\n"...)
			}
		default:
			sep := "\n"
			if g.array {
				sep = ",\n"
				if g.i == 0 {
					sep = "[\n"
				}
			}
			g.buf = fmt.Appendf(g.buf, `%s{"instruction":"Question number %d about some topic?","input":"","output":"Answer %d, with enough words to make the line about one hundred bytes."}`, sep, g.i, g.i)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

func TestStreamingMemoryIsBounded(t *testing.T) {
	const n = 100_000 // about 15 MB of input
	for _, kind := range []Kind{KindJSONL, KindJSON} {
		t.Run(string(kind), func(t *testing.T) {
			r, err := NewReader(&genReader{n: n, array: kind == KindJSON}, "gen", kind, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var peak uint64
			count := 0
			for {
				ex, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if count%20_000 == 0 {
					// Live heap after a GC: garbage is not growth.
					runtime.GC()
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
				if want := fmt.Sprintf("gen:%d", count+2); kind == KindJSON && ex.Source != want {
					t.Fatalf("example %d source %s, want %s", count, ex.Source, want)
				}
				count++
			}
			if count != n {
				t.Fatalf("read %d examples, want %d", count, n)
			}
			// The reader keeps one line/element and the decoder buffer:
			// a few hundred KB at most. 4 MB leaves room for the runtime.
			if growth := int64(peak) - int64(base); growth > 4<<20 {
				t.Errorf("heap grew by %d bytes while streaming %d records", growth, n)
			}
		})
	}
}

// TestReadAllContextCancelled: reading stops with the context's error.
func TestReadAllContextCancelled(t *testing.T) {
	p := writeFile(t, "d.jsonl", strings.Repeat(`{"text":"a"}`+"\n", 100))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	exs, _, err := ReadAllContext(ctx, p, Options{})
	if !errors.Is(err, context.Canceled) || len(exs) != 0 || !strings.Contains(err.Error(), "d.jsonl") {
		t.Errorf("got %d examples, %v", len(exs), err)
	}
}
