package recipe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/nn"
)

// nanModel is a copy of tiny-base with one NaN weight (the first of layer
// 0's q_proj): every logit computed from it is NaN.
func nanModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nan")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "model.safetensors" || strings.HasPrefix(e.Name(), "golden") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(tinyBase, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := safetensors.Open(filepath.Join(tinyBase, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const poisoned = "model.layers.0.self_attn.q_proj.weight"
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		x.Data = bytes.Clone(x.Data)
		if name == poisoned {
			switch x.DType {
			case safetensors.BF16:
				binary.LittleEndian.PutUint16(x.Data, 0x7fc0)
			case safetensors.F32:
				binary.LittleEndian.PutUint32(x.Data, math.Float32bits(float32(math.NaN())))
			default:
				t.Fatalf("%s is %s", name, x.DType)
			}
		}
		ts = append(ts, x)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEvaluateRefusesNaNLoss: `ftune eval` of a base with a NaN weight was
// "validation: loss NaN" and success; it is an error wrapping
// nn.ErrNonFinite that names the model.
func TestEvaluateRefusesNaNLoss(t *testing.T) {
	o := quickOptions(t, "eval")
	o.ModelDir = nanModel(t)
	var log bytes.Buffer
	o.Log = &log
	_, err := Evaluate(context.Background(), o, "")
	if !errors.Is(err, nn.ErrNonFinite) || !strings.Contains(err.Error(), o.ModelDir) || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("Evaluate of a NaN model: %v; want nn.ErrNonFinite naming %s", err, o.ModelDir)
	}
	t.Log(err)
	if strings.Contains(log.String(), "loss NaN") {
		t.Errorf("a NaN loss was printed as a measurement:\n%s", log.String())
	}
}

// TestRunStopsOnNaNLossBeforeTraining: the validation before training of
// a base with a NaN weight stops the run there, before any step, with
// the same error (it printed "loss NaN" and trained skipped steps until
// the divergence guard gave up).
func TestRunStopsOnNaNLossBeforeTraining(t *testing.T) {
	o := quickOptions(t, "nan")
	o.ModelDir = nanModel(t)
	var log bytes.Buffer
	o.Log = &log
	_, err := Run(context.Background(), o)
	if !errors.Is(err, nn.ErrNonFinite) || !strings.Contains(err.Error(), o.ModelDir) {
		t.Fatalf("Run on a NaN model: %v; want nn.ErrNonFinite naming %s", err, o.ModelDir)
	}
	t.Log(err)
	if strings.Contains(log.String(), "== training") || strings.Contains(log.String(), "step ") {
		t.Errorf("the run trained after a NaN validation:\n%s", log.String())
	}
	s := summaryOf(t, filepath.Join(o.OutDir, "nan"))
	if !strings.Contains(s.Reason, "NaN") {
		t.Errorf("summary.json reason %q does not say why", s.Reason)
	}
}
