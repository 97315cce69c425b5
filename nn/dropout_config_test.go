package nn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDropoutRatesRefused: a nonzero attention_dropout (every family) or
// Phi-3 resid_pdrop, which transformers applies in training and ftune has
// nowhere to apply, is refused naming config.json and the key; 0.0 and
// keys a family does not read (resid_pdrop on Llama) load as before.
func TestDropoutRatesRefused(t *testing.T) {
	const sizes = `"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4`
	for _, c := range []struct {
		doc, key string // key "" = accepted
	}{
		{`{"model_type": "llama", ` + sizes + `, "attention_dropout": 0.1}`, "attention_dropout"},
		{`{"model_type": "qwen2", ` + sizes + `, "attention_dropout": 0.05}`, "attention_dropout"},
		{`{"model_type": "phi3", ` + sizes + `, "attention_dropout": 0.1}`, "attention_dropout"},
		{`{"model_type": "phi3", ` + sizes + `, "attention_dropout": 0.0, "resid_pdrop": 0.1}`, "resid_pdrop"},
		{`{"model_type": "llama", ` + sizes + `, "attention_dropout": 0.0}`, ""},
		{`{"model_type": "phi3", ` + sizes + `, "attention_dropout": 0, "resid_pdrop": 0.0, "embd_pdrop": 0.1}`, ""},
		{`{"model_type": "llama", ` + sizes + `, "resid_pdrop": 0.1}`, ""},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(dir)
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", c.doc, err)
		case c.key != "" && (!errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "config.json: "+c.key+" is ")):
			t.Errorf("%s: error %v, want ErrUnsupported naming config.json and %s", c.doc, err, c.key)
		}
	}
}

// TestPrequantizedRefused: a checkpoint stored quantized is refused at its
// config, naming the method, instead of failing later on a tensor.
func TestPrequantizedRefused(t *testing.T) {
	const sizes = `"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4`
	for _, c := range []struct{ doc, want string }{
		{`{"model_type": "llama", ` + sizes + `, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true}}`, "quant_method bitsandbytes"},
		{`{"model_type": "qwen2", ` + sizes + `, "quantization_config": {"quant_method": "gptq", "bits": 4}}`, "quant_method gptq"},
		{`{"model_type": "llama", ` + sizes + `, "quantization_config": {}}`, "quant_method unnamed"},
		{`{"model_type": "llama", ` + sizes + `, "quantization_config": null}`, ""},
	} {
		_, err := ParseConfig([]byte(c.doc))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", c.doc, err)
		case c.want != "" && (!errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "config.json: quantization_config ("+c.want+")")):
			t.Errorf("%s: error %v, want ErrUnsupported naming %s", c.doc, err, c.want)
		}
	}
}
