package parquet_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/format/parquet"
	"github.com/ftune/ftune/internal/testutil"
)

// TestMain: parquet files are untrusted input; see testutil.TestMemory.
func TestMain(m *testing.M) {
	testutil.MustLimitMemory(testutil.TestMemory)
	os.Exit(m.Run())
}

func TestUnderMemoryLimit(t *testing.T) { testutil.CheckMemoryLimited(t) }

func chat(pairs ...string) []format.Message {
	var out []format.Message
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, format.Message{Role: pairs[i], Content: pairs[i+1]})
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type pqMessage struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqChat struct {
	Messages []pqMessage `parquet:"messages,list"`
}

// pqThinkingMessage is a message with an optional reasoning_content, as
// datasets of thinking models store it.
type pqThinkingMessage struct {
	Role      string  `parquet:"role"`
	Content   string  `parquet:"content"`
	Reasoning *string `parquet:"reasoning_content,optional"`
}

type pqThinkingChat struct {
	Messages []pqThinkingMessage `parquet:"messages,list"`
}

type pqAlpaca struct {
	Instruction string `parquet:"instruction"`
	Input       string `parquet:"input"`
	Output      string `parquet:"output"`
}

// encodeParquet writes rows as a parquet file's bytes.
func encodeParquet[T any](rows []T) ([]byte, error) {
	var b bytes.Buffer
	w := pq.NewGenericWriter[T](&b)
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeParquet[T any](t *testing.T, rows []T) string {
	t.Helper()
	data, err := encodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "d.parquet")
	if err := os.WriteFile(p, data, 0o644); err != nil {
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
		exs, rep, err := format.ReadAll(p, format.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(exs) != 150 || rep.Examples != 150 {
			t.Fatalf("%d examples, report %+v", len(exs), rep)
		}
		want := format.Example{Messages: chat("user", "q3\n\nctx", "assistant", "a3"), Source: p + ": row 4"}
		if !reflect.DeepEqual(exs[3], want) {
			t.Errorf("row 4 = %+v, want %+v", exs[3], want)
		}
	})
	t.Run("chat list column", func(t *testing.T) {
		p := writeParquet(t, []pqChat{
			{Messages: []pqMessage{{"user", "hi"}, {"assistant", "hello"}}},
			{Messages: []pqMessage{{"system", "s"}, {"user", "u"}, {"assistant", "a"}}},
		})
		exs, _, err := format.ReadAll(p, format.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []format.Example{
			{Messages: chat("user", "hi", "assistant", "hello"), Source: p + ": row 1"},
			{Messages: chat("system", "s", "user", "u", "assistant", "a"), Source: p + ": row 2"},
		}
		if !reflect.DeepEqual(exs, want) {
			t.Errorf("got %+v\nwant %+v", exs, want)
		}
	})
	t.Run("reasoning_content", func(t *testing.T) {
		r := "Two and two."
		p := writeParquet(t, []pqThinkingChat{
			{Messages: []pqThinkingMessage{{"user", "2+2?", nil}, {"assistant", "4", &r}}},
			{Messages: []pqThinkingMessage{{"user", "hi", &r}, {"assistant", "hello", nil}}},
		})
		_, _, err := format.ReadAll(p, format.Options{})
		if !errors.Is(err, format.ErrBadValue) || !strings.Contains(err.Error(), p+": row 2:") || !strings.Contains(err.Error(), "only assistant messages") {
			t.Fatalf("want row 2's reasoning on a user message refused with its position, got %v", err)
		}
		exs, _, err := format.ReadAll(p, format.Options{Skip: true})
		if err != nil {
			t.Fatal(err)
		}
		want := []format.Example{{Messages: []format.Message{{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4", ReasoningContent: r}}, Source: p + ": row 1"}}
		if !reflect.DeepEqual(exs, want) {
			t.Errorf("got %+v\nwant %+v", exs, want)
		}
	})
	t.Run("unknown role", func(t *testing.T) {
		p := writeParquet(t, []pqChat{{Messages: []pqMessage{{"user", "hi"}, {"narrator", "x"}}}})
		_, _, err := format.ReadAll(p, format.Options{})
		if !errors.Is(err, format.ErrUnknownRole) {
			t.Errorf("error %v, want unknown role", err)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		for _, content := range []string{"", "PAR1", "PAR1 not really a parquet file PAR1", "hello world, 32 bytes of nothing"} {
			p := writeFile(t, "bad.parquet", content)
			_, _, err := format.ReadAll(p, format.Options{})
			if !errors.Is(err, format.ErrMalformed) {
				t.Errorf("content %q: error %v, want ErrMalformed", content, err)
			}
		}
	})
}

// allocated is the bytes allocated by fn (all goroutines, so tests that
// use it do not run in parallel).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxAlloc bounds what reading a small file may allocate: a few corrupt
// bytes must not claim gigabytes.
const maxAlloc = 64 << 20

// TestParquetFooterBomb: 200 corrupt bytes whose footer length claims
// 2 GB made parquet-go allocate 2 GB before noticing the file is short.
func TestParquetFooterBomb(t *testing.T) {
	data := []byte("PAR1" + strings.Repeat("x", 200) + "\xff\xff\xff\x7fPAR1")
	p := writeFile(t, "bomb.parquet", string(data))
	var err error
	n := allocated(func() { _, _, err = format.ReadAll(p, format.Options{}) })
	if !errors.Is(err, format.ErrMalformed) || !strings.Contains(err.Error(), "footer claims") {
		t.Errorf("got %v", err)
	}
	if n > maxAlloc {
		t.Errorf("reading %d bytes allocated %d MB", len(data), n>>20)
	}
}

// FuzzParquet: no file crashes the reader (parquet-go panics on some
// corrupt inputs, which must become ErrMalformed, and dies outright when it
// allocates what corrupt metadata claims, which the checks in bounds.go
// refuse first) or makes it allocate more than maxAlloc, and every example
// it returns is valid. The memory budget is lowered to a quarter of
// maxAlloc: what parquet-go allocates for a file that passes the checks is
// bounded by a small multiple of it. Seeds: a small valid file with each
// codec and page version, truncations, the files of other writers in
// testdata/writers, and testdata/fuzz/FuzzParquet.
func FuzzParquet(f *testing.F) {
	seed, err := encodeParquet([]pqChat{{Messages: []pqMessage{{"user", "hi"}, {"assistant", "hello"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("PAR1"))
	for _, codec := range codecs[1:] {
		for _, version := range []int{1, 2} {
			data, err := encodeParquetWith(alpacaRows(20), pq.Compression(codec), pq.DataPageVersion(version))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	others, _ := filepath.Glob(filepath.Join("testdata", "writers", "*.parquet"))
	for _, p := range others {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	defer parquet.SetMemoryBudget(parquet.SetMemoryBudget(maxAlloc / 4))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, fmt.Sprintf("f%d.parquet", os.Getpid()))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var exs []format.Example
		var err error
		if n := allocated(func() { exs, _, err = format.ReadAll(p, format.Options{Skip: true}) }); n > maxAlloc {
			t.Fatalf("reading %d bytes allocated %d MB", len(data), n>>20)
		}
		var pe *format.PosError
		if err != nil && !errors.As(err, &pe) && !errors.Is(err, format.ErrEmptyDataset) && !errors.Is(err, format.ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, ex := range exs {
			if err := ex.Validate(); err != nil {
				t.Fatalf("invalid example %+v: %v", ex, err)
			}
		}
	})
}
