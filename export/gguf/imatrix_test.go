package gguf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyBaseImatrix is llama-imatrix's importance matrix of tiny-base
// (testdata/kquants/README.md says how it was made).
var tinyBaseImatrix = filepath.Join("testdata", "kquants", "tiny-base-imatrix.gguf")

// TestReadImatrixLlamaCpp reads the file llama-imatrix wrote: its
// metadata, and entries whose importances are the sums over the counts.
func TestReadImatrixLlamaCpp(t *testing.T) {
	im, err := ReadImatrix(tinyBaseImatrix)
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Entries) != 42 || im.ChunkCount != 139 || im.ChunkSize != 256 || len(im.Datasets) != 1 || im.Path != tinyBaseImatrix {
		t.Fatalf("%d entries, %d chunks of %d, datasets %q, path %q; want 42 (7 projections × 6 layers), 139 chunks of 256, one dataset", len(im.Entries), im.ChunkCount, im.ChunkSize, im.Datasets, im.Path)
	}
	e, ok := im.Entries["blk.0.ffn_down.weight"]
	if !ok || len(e.SumSquares) != 704 || len(e.Counts) != 1 || e.Counts[0] != 139*256 {
		t.Fatalf("blk.0.ffn_down.weight: %d values, counts %v; want 704 over %d tokens", len(e.SumSquares), e.Counts, 139*256)
	}
	imp := e.Importance()
	for i, v := range imp {
		if v != e.SumSquares[i]/e.Counts[0] || !(v > 0) {
			t.Fatalf("importance %d = %v, sums %v / count %v", i, v, e.SumSquares[i], e.Counts[0])
		}
	}
	if _, ok := im.Entries["output.weight"]; ok {
		t.Error("llama-imatrix collects no LM head by default, yet the file has one")
	}
}

// TestImatrixRoundTrip: WriteImatrix writes what ReadImatrix reads back,
// experts included; a matrix with no token gives importances of 1, as
// llama-quantize substitutes.
func TestImatrixRoundTrip(t *testing.T) {
	im := &Imatrix{
		Entries: map[string]ImatrixEntry{
			"blk.0.attn_q.weight":      {SumSquares: []float32{1, 4, 9, 0}, Counts: []float32{2}},
			"blk.0.ffn_up_exps.weight": {SumSquares: []float32{2, 4, 6, 8, 5, 5}, Counts: []float32{2, 0}},
		},
		Datasets:   []string{"calibration.txt"},
		ChunkCount: 3,
		ChunkSize:  512,
	}
	path := filepath.Join(t.TempDir(), "sub", "im.gguf")
	if err := WriteImatrix(path, im); err != nil {
		t.Fatal(err)
	}
	if !WrittenByFtune(path) {
		t.Error("the file is not marked as ftune's, so a later run could not replace it")
	}
	got, err := ReadImatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	got.Path = ""
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(im)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("read back %s, wrote %s", gotJSON, wantJSON)
	}
	if imp := got.Entries["blk.0.ffn_up_exps.weight"].Importance(); !equalF32(imp, []float32{1, 2, 3, 1, 1, 1}) {
		t.Errorf("expert importances %v, want [1 2 3 1 1 1] (the second expert saw no token)", imp)
	}
	if err := WriteImatrix(path, &Imatrix{}); err == nil {
		t.Error("an empty matrix was written")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// legacyImatrix builds a legacy .dat file: entries (name, calls, values),
// then the chunk count and the dataset name.
func legacyImatrix(entries []struct {
	name   string
	calls  int32
	values []float32
}, chunks int32, dataset string) []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	w(int32(len(entries)))
	for _, e := range entries {
		w(int32(len(e.name)))
		b.WriteString(e.name)
		w(e.calls)
		w(int32(len(e.values)))
		w(e.values)
	}
	w(chunks)
	w(int32(len(dataset)))
	b.WriteString(dataset)
	return b.Bytes()
}

// TestReadImatrixLegacy reads the .dat format (values are the means times
// the calls, divided back by them) and refuses corrupt ones with the
// file's name, never a panic.
func TestReadImatrixLegacy(t *testing.T) {
	dir := t.TempDir()
	good := legacyImatrix([]struct {
		name   string
		calls  int32
		values []float32
	}{{"blk.0.attn_q.weight", 4, []float32{8, 4}}, {"blk.0.ffn_down.weight", 0, []float32{3}}}, 7, "wiki.txt")
	path := filepath.Join(dir, "im.dat")
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := ReadImatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	if im.ChunkCount != 7 || len(im.Datasets) != 1 || im.Datasets[0] != "wiki.txt" {
		t.Errorf("chunks %d, datasets %q; want 7, [wiki.txt]", im.ChunkCount, im.Datasets)
	}
	if imp := im.Entries["blk.0.attn_q.weight"].Importance(); !equalF32(imp, []float32{2, 1}) {
		t.Errorf("importance %v, want [2 1]", imp)
	}
	if imp := im.Entries["blk.0.ffn_down.weight"].Importance(); !equalF32(imp, []float32{1}) {
		t.Errorf("importance of an entry without calls %v, want [1]", imp)
	}
	nan := legacyImatrix([]struct {
		name   string
		calls  int32
		values []float32
	}{{"w", 1, []float32{float32(math.NaN())}}}, 1, "")
	negative := legacyImatrix([]struct {
		name   string
		calls  int32
		values []float32
	}{{"w", 1, []float32{-1}}}, 1, "")
	for name, data := range map[string][]byte{
		"empty":      {},
		"no entries": {0, 0, 0, 0},
		"huge count": {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4},
		"truncated":  good[:30],
		"long name":  append([]byte{1, 0, 0, 0, 0xff, 0xff, 0, 0}, make([]byte, 64)...),
		"NaN value":  nan,
		"negative":   negative,
		"text file":  []byte("Question: what?\nAnswer: this is no imatrix at all\n"),
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadImatrix(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming %s", name, err, p)
		}
	}
}

// FuzzReadImatrix: any bytes give a matrix or an error, never a panic or a
// hang (the file comes from the user, or from the internet).
func FuzzReadImatrix(f *testing.F) {
	good, err := os.ReadFile(tinyBaseImatrix)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[:4096])
	f.Add(legacyImatrix([]struct {
		name   string
		calls  int32
		values []float32
	}{{"blk.0.attn_q.weight", 4, []float32{8, 4}}}, 7, "wiki.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "im")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if im, err := ReadImatrix(p); err == nil {
			for _, n := range im.Names() {
				im.Entries[n].Importance()
			}
		}
	})
}

// TestExportImatrixMatchesLlamaQuantize: tiny-base exported with
// llama-imatrix's matrix holds, tensor for tensor, the bytes llama-quantize
// --imatrix writes from ftune's F32 export with the same matrix (the
// goldens are the sha256 of each tensor of its files, for five mixes that
// between them use every weighted type: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and
// the fallbacks Q4_0, Q5_0, Q5_1; Q8_0 ignores the matrix).
func TestExportImatrixMatchesLlamaQuantize(t *testing.T) {
	m, tok, tmpl := loadTiny(t)
	im, err := ReadImatrix(tinyBaseImatrix)
	if err != nil {
		t.Fatal(err)
	}
	for _, ft := range []FileType{FileQ2_K, FileQ3_K_M, FileQ4_K_M, FileQ5_K_M, FileQ6_K} {
		t.Run(ft.String(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "kquants", "imatrix-tiny-base-"+ft.String()+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]struct{ Type, SHA256 string }
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "tiny.gguf")
			if err := WriteModelWith(context.Background(), path, m, tok, Options{ChatTemplate: tmpl, FileType: ft, Importance: im}); err != nil {
				t.Fatal(err)
			}
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Tensors) != len(want) {
				t.Fatalf("%d tensors, llama-quantize wrote %d", len(f.Tensors), len(want))
			}
			weighed := 0
			for _, ti := range f.Tensors {
				raw, err := f.Raw(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(raw)
				w := want[ti.Name]
				if ti.Type.String() != w.Type || hex.EncodeToString(sum[:]) != w.SHA256 {
					t.Errorf("%s: %s with other bytes than llama-quantize's %s", ti.Name, ti.Type, w.Type)
				}
				if _, ok := im.Entries[ti.Name]; ok && takesImportance(ti.Type) {
					weighed++
				}
			}
			if weighed == 0 {
				t.Error("no tensor took the matrix: the test would pass without it")
			}
			for k, want := range map[string]uint64{"quantize.imatrix.entries_count": 42, "quantize.imatrix.chunks_count": 139} {
				if got, ok := f.Uint(k); !ok || got != want {
					t.Errorf("%s = %d (%v), want %d", k, got, ok, want)
				}
			}
			if got, _ := f.String("quantize.imatrix.file"); got != tinyBaseImatrix {
				t.Errorf("quantize.imatrix.file = %q, want %q", got, tinyBaseImatrix)
			}
		})
	}
}

// TestExportImatrixRefusals: a matrix is refused for a file type that does
// not use one, for a model it does not fit (an entry of another width),
// and when it names no weight of the model.
func TestExportImatrixRefusals(t *testing.T) {
	m, tok, _ := loadTiny(t)
	im, err := ReadImatrix(tinyBaseImatrix)
	if err != nil {
		t.Fatal(err)
	}
	write := func(ft FileType, im *Imatrix) error {
		return WriteModelWith(context.Background(), filepath.Join(t.TempDir(), "x.gguf"), m, tok, Options{FileType: ft, Importance: im})
	}
	for _, ft := range []FileType{FileF16, FileQ8_0} {
		if err := write(ft, im); err == nil || !strings.Contains(err.Error(), "q4_k_s/m") {
			t.Errorf("%s with a matrix: error %v, want a refusal naming the mixes", ft, err)
		}
	}
	wrong := &Imatrix{Entries: map[string]ImatrixEntry{"blk.0.attn_q.weight": {SumSquares: make([]float32, 100), Counts: []float32{1}}}, Path: "other.gguf"}
	if err := write(FileQ4_K_M, wrong); err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") || !strings.Contains(err.Error(), "256") {
		t.Errorf("an entry of 100 values for rows of 256: error %v", err)
	}
	stray := &Imatrix{Entries: map[string]ImatrixEntry{"blk.99.attn_q.weight": {SumSquares: make([]float32, 256), Counts: []float32{1}}}}
	if err := write(FileQ4_K_M, stray); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Errorf("a matrix naming no weight of the model: error %v", err)
	}
	if err := write(FileQ4_K_M, &Imatrix{}); err == nil {
		t.Error("an empty matrix was accepted")
	}
}

// TestImportanceNotes: the notes say how many weights the matrix weighed,
// which it had no entry for, and entries that name no weight.
func TestImportanceNotes(t *testing.T) {
	m, _, _ := loadTiny(t)
	im, err := ReadImatrix(tinyBaseImatrix)
	if err != nil {
		t.Fatal(err)
	}
	im.Entries["blk.6.attn_q.weight"] = im.Entries["blk.0.attn_q.weight"]
	notes, err := ImportanceNotes(m, Options{FileType: FileQ4_K_M, Importance: im})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{"weighed 40 of the 41 weights", "token_embd.weight (Q6_K)", "1 importance matrix entries name no weight of this model: blk.6.attn_q.weight"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes %q lack %q", all, want)
		}
	}
}
