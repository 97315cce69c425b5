package ftune

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export/gguf"
)

// TestCalibrationText: a data file's conversations come out as the chat
// template renders them, its texts as they are, in file order.
func TestCalibrationText(t *testing.T) {
	m, err := Load(TinyBase, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chats := filepath.Join(dir, "chats.jsonl")
	texts := filepath.Join(dir, "texts.jsonl")
	os.WriteFile(chats, []byte(`{"messages":[{"role":"user","content":"Symbol of iron?"},{"role":"assistant","content":"Fe"}]}
{"messages":[{"role":"user","content":"Symbol of gold?"},{"role":"assistant","content":"Au"}]}
`), 0o644)
	os.WriteFile(texts, []byte(`{"text":"Iron rusts in water."}
{"text":"Gold does not."}
`), 0o644)
	var want string
	for _, qa := range [][2]string{{"Symbol of iron?", "Fe"}, {"Symbol of gold?", "Au"}} {
		r, err := m.Template.Render([]Message{{Role: "user", Content: qa[0]}, {Role: "assistant", Content: qa[1]}}, false)
		if err != nil {
			t.Fatal(err)
		}
		want += r
		if !strings.HasSuffix(r, "\n") {
			want += "\n"
		}
	}
	// Unpaired feedback (KTO's): each prompt with its one completion,
	// undesirable or not.
	feedback := filepath.Join(dir, "feedback.jsonl")
	os.WriteFile(feedback, []byte(`{"prompt":[{"role":"user","content":"Symbol of iron?"}],"completion":[{"role":"assistant","content":"Fe"}],"label":true}
{"prompt":[{"role":"user","content":"Symbol of gold?"}],"completion":[{"role":"assistant","content":"Au"}],"label":false}
`), 0o644)
	for path, want := range map[string]string{chats: want, feedback: want, texts: "Iron rusts in water.\nGold does not.\n"} {
		got, err := m.CalibrationText(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != want || got.Examples != 2 || got.Cut {
			t.Errorf("CalibrationText(%s) = %+v, want %q of 2 examples, not cut", filepath.Base(path), got, want)
		}
	}
	// Past the limit: the examples that fit, and Cut; a text file is cut
	// after its last newline within the limit.
	defer func(l int) { calibrationLimit = l }(calibrationLimit)
	calibrationLimit = len("Iron rusts in water.\nGold")
	if got, err := m.CalibrationText(context.Background(), texts); err != nil || got.Text != "Iron rusts in water.\n" || got.Examples != 1 || !got.Cut {
		t.Errorf("cut at %d bytes: %+v, %v", calibrationLimit, got, err)
	}
	plain := filepath.Join(dir, "plain.txt")
	os.WriteFile(plain, []byte("Iron rusts in water.\nGold does not.\n"), 0o644)
	if got, err := ReadCalibrationText(plain); err != nil || got.Text != "Iron rusts in water.\n" || !got.Cut {
		t.Errorf("ReadCalibrationText cut at %d bytes: %+v, %v", calibrationLimit, got, err)
	}
	calibrationLimit = 5
	if _, err := m.CalibrationText(context.Background(), texts); err == nil || !strings.Contains(err.Error(), "first example") {
		t.Errorf("a first example past the limit: %v", err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	if _, err := m.CalibrationText(context.Background(), empty); err == nil || !strings.Contains(err.Error(), "empty.jsonl") {
		t.Errorf("an empty file: %v", err)
	}
}

// TestImportanceMatrixExport: a matrix computed through the API and saved
// weighs a k-quant export (its notes say how many weights), is refused
// for the formats it cannot weigh, and a chunk longer than the model's
// positions, or a text shorter than a chunk, is refused with the numbers.
func TestImportanceMatrixExport(t *testing.T) {
	m := loadTrained(t)
	text := strings.Repeat("Which element has the symbol Fe? Iron. ", 40)
	im, err := m.ImportanceMatrix(context.Background(), text, ImatrixOptions{ChunkTokens: 64, Dataset: "iron"})
	if err != nil {
		t.Fatal(err)
	}
	if im.ChunkSize != 64 || im.ChunkCount < 2 || len(im.Entries) != 7*m.Net.Config.NumLayers {
		t.Fatalf("%d chunks of %d, %d entries", im.ChunkCount, im.ChunkSize, len(im.Entries))
	}
	path := filepath.Join(t.TempDir(), "im.gguf")
	if err := gguf.WriteImatrix(path, im); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "q2.gguf")
	notes, err := m.Export(context.Background(), out, ExportOptions{Format: FormatGGUF, Quant: "q2_k", Imatrix: path})
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(notes, "\n"); !strings.Contains(all, "importance matrix "+path) || !strings.Contains(all, "weighed") {
		t.Errorf("notes %q do not say what the matrix did", all)
	}
	for _, f := range []string{FormatPEFT, FormatMerged, FormatGGUFLoRA} {
		if _, err := m.Export(context.Background(), filepath.Join(t.TempDir(), "x"), ExportOptions{Format: f, Imatrix: path}); err == nil || !strings.Contains(err.Error(), "importance matrix") {
			t.Errorf("%s with an importance matrix: %v", f, err)
		}
	}
	if _, err := m.Export(context.Background(), filepath.Join(t.TempDir(), "x"), ExportOptions{Format: FormatMerged, OutputType: "q8_0"}); err == nil || !strings.Contains(err.Error(), "GGUF model's") {
		t.Errorf("a merged export with an output type: %v", err)
	}
	if _, err := m.ImportanceMatrix(context.Background(), text, ImatrixOptions{ChunkTokens: 1 << 20}); err == nil || !strings.Contains(err.Error(), "positions") {
		t.Errorf("a chunk past the model's positions: %v", err)
	}
	if _, err := m.ImportanceMatrix(context.Background(), "Iron.", ImatrixOptions{ChunkTokens: 64}); err == nil || !strings.Contains(err.Error(), "fewer than one chunk of 64") {
		t.Errorf("a text shorter than a chunk: %v", err)
	}
}
