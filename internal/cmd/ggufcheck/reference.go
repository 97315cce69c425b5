package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// referenceText exercises the pre-tokenizer (contractions, digits,
// punctuation, runs of spaces, a newline) and a special token.
const referenceText = "The whale's 1851 voyage, I'd say -- was  long!\nCall me Ishmael.<|im_end|>"

// reference writes merged/ (the check adapter merged, as a Hugging Face
// folder) and reference.json with our logits and tokenization.
func reference(out, model string) error {
	m, err := nn.Load(model, nn.LoadOptions{})
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(model)
	if err != nil {
		return err
	}
	a, err := checkAdapter(m)
	if err != nil {
		return err
	}
	if err := export.MergedHF(m, a, model, filepath.Join(out, "merged"), 0); err != nil {
		return err
	}
	enc, err := tok.Encode(referenceText, false)
	if err != nil {
		return err
	}
	ids := []int64{0, 1, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700, 5, 1200, 33}
	base, err := forward(m, ids)
	if err != nil {
		return err
	}
	if err := a.Attach(m); err != nil {
		return err
	}
	adapted, err := forward(m, ids)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{
		"ids": ids, "vocab": m.Config.VocabSize,
		"text": referenceText, "text_ids": enc.IDs,
		"logits_base": base, "logits_lora": adapted,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "reference.json"), raw, 0o644)
}

func forward(m *nn.Model, ids []int64) ([]float32, error) {
	in := tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))
	var tp *autograd.Tape
	o, err := m.Forward(tp, nn.Batch{InputIDs: in}, nn.ForwardOptions{})
	if err != nil {
		return nil, err
	}
	return o.Logits.Value.F32(), nil
}
