package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type pqMessage struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqChat struct {
	Messages []pqMessage `parquet:"messages,list"`
}

type pqAlpaca struct {
	Instruction string `parquet:"instruction"`
	Input       string `parquet:"input"`
	Output      string `parquet:"output"`
}

func writeParquet[T any](t *testing.T, rows []T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "d.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParquet(t *testing.T) {
	t.Run("alpaca", func(t *testing.T) {
		var rows []pqAlpaca
		for i := range 150 { // more than one read batch
			rows = append(rows, pqAlpaca{Instruction: fmt.Sprint("q", i), Output: fmt.Sprint("a", i)})
		}
		rows[3].Input = "ctx"
		p := writeParquet(t, rows)
		exs, rep, err := ReadAll(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(exs) != 150 || rep.Examples != 150 {
			t.Fatalf("%d examples, report %+v", len(exs), rep)
		}
		want := Example{Messages: chat("user", "q3\n\nctx", "assistant", "a3"), Source: p + ":4"}
		if !reflect.DeepEqual(exs[3], want) {
			t.Errorf("row 4 = %+v, want %+v", exs[3], want)
		}
	})
	t.Run("chat list column", func(t *testing.T) {
		p := writeParquet(t, []pqChat{
			{Messages: []pqMessage{{"user", "hi"}, {"assistant", "hello"}}},
			{Messages: []pqMessage{{"system", "s"}, {"user", "u"}, {"assistant", "a"}}},
		})
		exs, _, err := ReadAll(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []Example{
			{Messages: chat("user", "hi", "assistant", "hello"), Source: p + ":1"},
			{Messages: chat("system", "s", "user", "u", "assistant", "a"), Source: p + ":2"},
		}
		if !reflect.DeepEqual(exs, want) {
			t.Errorf("got %+v\nwant %+v", exs, want)
		}
	})
	t.Run("unknown role", func(t *testing.T) {
		p := writeParquet(t, []pqChat{{Messages: []pqMessage{{"user", "hi"}, {"narrator", "x"}}}})
		_, _, err := ReadAll(p, Options{})
		if !errors.Is(err, ErrUnknownRole) {
			t.Errorf("error %v, want unknown role", err)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		for _, content := range []string{"", "PAR1", "PAR1 not really a parquet file PAR1", "hello world, 32 bytes of nothing"} {
			p := writeFile(t, "bad.parquet", content)
			_, _, err := ReadAll(p, Options{})
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("content %q: error %v, want ErrMalformed", content, err)
			}
		}
	})
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
