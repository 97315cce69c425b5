package gguf

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
)

// A LoRA of rank 16 in Q4_0 or Q8_0 (blocks of 32) stores every lora_b as
// F16: LoRATypeNotes says so, counting them, as TypeNotes does for a
// model's weights (the audit's 42 tensors, written with no word); F16 has
// no blocks and nothing to say.
func TestLoRATypeNotes(t *testing.T) {
	m, _, _ := loadTiny(t)
	a := randomAdapter(t, m, lora.NewConfig(16, 32, "all-linear"))
	for _, c := range []struct {
		ft   FileType
		want string
	}{
		{FileQ4_0, "Q4_0: 42 LoRA tensors whose rows are not whole 32-value blocks are stored as F16 instead of Q4_0, as llama.cpp's converter stores them: blk.0.ffn_down.weight.lora_b (rows of 16) and 41 more"},
		{FileQ8_0, "Q8_0: 42 LoRA tensors whose rows are not whole 32-value blocks are stored as F16 instead of Q8_0"},
		{FileF16, ""},
	} {
		notes, err := LoRATypeNotes(m, a, c.ft)
		if err != nil {
			t.Fatal(err)
		}
		if c.want == "" && len(notes) != 0 || c.want != "" && (len(notes) != 1 || !strings.HasPrefix(notes[0], c.want)) {
			t.Errorf("%s: notes %q, want one beginning %q", c.ft, notes, c.want)
		}
	}
	// The notes say what the file holds.
	path := t.TempDir() + "/l.gguf"
	if err := WriteLoRA(path, m, a, FileQ4_0); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f16 := 0
	for _, ti := range f.Tensors {
		if ti.Type == F16 {
			f16++
			if !strings.HasSuffix(ti.Name, ".lora_b") {
				t.Errorf("%s is F16", ti.Name)
			}
		}
	}
	if f16 != 42 {
		t.Errorf("the file holds %d F16 tensors, the note says 42", f16)
	}
}
