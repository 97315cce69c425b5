package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/lora"
)

// noPanic runs f and fails t when it panics (as the calls below did on a
// nil or zero Model, or a nil context).
func noPanic(t *testing.T, name string, f func() error) error {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s: panicked: %v", name, r)
				err = errors.New("panicked")
			}
		}()
		err = f()
	}()
	return err
}

// TestNilOrZeroModelIsAnError: every method of a Model called on a nil
// *Model, or a Model that Load did not make, returns an error matching
// ErrNotLoaded and ErrInvalidInput; they all panicked on a nil pointer
// (StopTokens of a nil Model is none).
func TestNilOrZeroModelIsAnError(t *testing.T) {
	ctx := context.Background()
	user := []Message{{Role: "user", Content: "hi"}}
	yes := true
	for name, m := range map[string]*Model{"nil": nil, "zero": {}} {
		for call, f := range map[string]func() error{
			"Generate":      func() error { _, err := m.Generate(ctx, "hi", GenerateOptions{}); return err },
			"Chat":          func() error { _, err := m.Chat(ctx, user, GenerateOptions{}); return err },
			"CheckThinking": func() error { return m.CheckThinking(&yes) },
			"CheckTools":    func() error { return m.CheckTools(ctx, json.RawMessage(`[{"type":"function"}]`)) },
			"Export": func() error {
				_, err := m.Export(ctx, filepath.Join(t.TempDir(), "out.gguf"), ExportOptions{Format: FormatGGUF})
				return err
			},
			"ImportanceMatrix": func() error { _, err := m.ImportanceMatrix(ctx, "hi", ImatrixOptions{}); return err },
			"CalibrationText":  func() error { _, err := m.CalibrationText(ctx, "/nonexistent.jsonl"); return err },
			"Send":             func() error { _, err := m.NewConversation("").Send(ctx, "hi", GenerateOptions{}); return err },
		} {
			err := noPanic(t, name+" "+call, f)
			// A nil Model's conversation says it has no model (its own
			// message, older than ErrNotLoaded).
			if call == "Send" && name == "nil" {
				if err == nil {
					t.Errorf("%s %s: no error", name, call)
				}
				continue
			}
			if !errors.Is(err, ErrNotLoaded) || !errors.Is(err, ErrInvalidInput) {
				t.Errorf("%s %s: %v, want ErrNotLoaded and ErrInvalidInput", name, call, err)
			}
		}
		noPanic(t, name+" StopTokens", func() error { m.StopTokens(); return nil })
	}
}

// TestNilContextIsAnError: a nil context is refused as invalid input by
// every call that takes one, before any work; they panicked (Generate,
// Chat, Train and Evaluate at once, FineTune after writing its examples'
// folder).
func TestNilContextIsAnError(t *testing.T) {
	m := tinyModel(t)
	out := t.TempDir()
	cfg := tinyTrainConfig(out, 1)
	ex := []Example{{Messages: []Message{{Role: "user", Content: "Symbol of iron?"}, {Role: "assistant", Content: "Fe"}}}}
	var nilCtx context.Context
	for call, f := range map[string]func() error{
		"Generate": func() error { _, err := m.Generate(nilCtx, "hi", GenerateOptions{}); return err },
		"Chat": func() error {
			_, err := m.Chat(nilCtx, []Message{{Role: "user", Content: "hi"}}, GenerateOptions{})
			return err
		},
		"Send":       func() error { _, err := m.NewConversation("").Send(nilCtx, "hi", GenerateOptions{}); return err },
		"CheckTools": func() error { return m.CheckTools(nilCtx, json.RawMessage(`[{"type":"function"}]`)) },
		"Export": func() error {
			_, err := m.Export(nilCtx, filepath.Join(out, "m.gguf"), ExportOptions{Format: FormatGGUF})
			return err
		},
		"ImportanceMatrix": func() error { _, err := m.ImportanceMatrix(nilCtx, "hi", ImatrixOptions{}); return err },
		"Train":            func() error { _, err := Train(nilCtx, cfg, nil); return err },
		"FineTune":         func() error { _, err := FineTune(nilCtx, ex, cfg, nil); return err },
		"FineTunePreferences": func() error {
			_, err := FineTunePreferences(nilCtx, []Preference{{Prompt: ex[0].Messages[:1], Chosen: ex[0].Messages[1:], Rejected: []Message{{Role: "assistant", Content: "Au"}}}}, cfg, nil)
			return err
		},
		"FineTuneFeedback": func() error {
			_, err := FineTuneFeedback(nilCtx, []Feedback{{Prompt: ex[0].Messages[:1], Completion: ex[0].Messages[1:]}}, cfg, nil)
			return err
		},
		"Evaluate": func() error { _, err := Evaluate(nilCtx, EvaluateOptions{Config: cfg}); return err },
	} {
		err := noPanic(t, call, f)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("%s with a nil context: %v, want invalid input naming the nil context", call, err)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) > 0 {
		t.Errorf("calls refused for a nil context wrote %s: %v", out, ents)
	}
}

// TestLibraryErrorsNameNoFlagsAlone: Export's refusals and ResolveBase's
// advice were written for the ftune command ("export --format peft: a
// tensor type (--quant q8_0)", "pass --model with the base's folder"): a
// program embedding ftune has neither. They now name the options (and
// the command's flag only as the command's).
func TestLibraryErrorsNameNoFlagsAlone(t *testing.T) {
	m := tinyModel(t)
	withAdapter := *m
	withAdapter.Adapter = &lora.Adapter{} // refused before it is read
	dir := t.TempDir()
	var errs []error
	for _, c := range []struct {
		m   *Model
		opt ExportOptions
	}{
		{m, ExportOptions{Format: FormatPEFT}},
		{&withAdapter, ExportOptions{Format: FormatPEFT, Quant: "q8_0"}},
		{&withAdapter, ExportOptions{Format: FormatMerged, Quant: "q4_0"}},
		{m, ExportOptions{Format: FormatGGUF, MaxShardBytes: 1000}},
		{&withAdapter, ExportOptions{Format: FormatPEFT, Imatrix: "x.dat"}},
		{&withAdapter, ExportOptions{Format: FormatPEFT, OutputType: "q8_0"}},
	} {
		_, err := c.m.Export(context.Background(), filepath.Join(dir, "out"), c.opt)
		if err == nil {
			t.Fatalf("%+v: no error", c.opt)
		}
		errs = append(errs, err)
	}
	peft := t.TempDir()
	cfg := `{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"], "base_model_name_or_path": "/nonexistent/base"}`
	if err := os.WriteFile(filepath.Join(peft, lora.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := ResolveBase(peft, "")
	if !errors.Is(err, ErrBaseNotFound) {
		t.Fatalf("a PEFT adapter whose base is not here: %v, want ErrBaseNotFound", err)
	}
	errs = append(errs, err)
	for _, err := range errs {
		msg := err.Error()
		for _, flag := range []string{"--format", "--quant", "--max-shard-mb", "pass --model"} {
			if strings.Contains(msg, flag) && !strings.Contains(msg, "the command's "+flag) {
				t.Errorf("%q names the command's %s", msg, flag)
			}
		}
		if strings.Contains(msg, "--") && !strings.Contains(msg, "the command's --") {
			t.Errorf("%q names a flag as if the caller had one", msg)
		}
	}
}

// TestTrainTwiceIntoOneFolder: two Trains at once into one run folder:
// one trains, the other is refused with ErrRunExists (exported here, so
// that a service can tell it from a failed run without importing track).
func TestTrainTwiceIntoOneFolder(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = Train(context.Background(), tinyTrainConfig(out, 1), nil) })
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrRunExists):
			refused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("two Trains into one folder: %v, want one trained and one refused with ErrRunExists", errs)
	}
}

// TestBadConfigIsInvalidInput: a run configuration that Validate refuses
// is the caller's mistake, refused before any work: Train's, FineTune's
// and Evaluate's errors now match ErrInvalidInput (a service answers a
// bad request), and still config's sentinel and FieldError naming the
// key. They matched config.ErrInvalid alone, which a caller had to import
// config to know of.
func TestBadConfigIsInvalidInput(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 1)
	cfg.Training.MaxSteps = -1
	ex := []Example{{Messages: []Message{{Role: "user", Content: "Symbol of iron?"}, {Role: "assistant", Content: "Fe"}}}}
	for call, f := range map[string]func() error{
		"Train":    func() error { _, err := Train(context.Background(), cfg, nil); return err },
		"FineTune": func() error { _, err := FineTune(context.Background(), ex, cfg, nil); return err },
		"Evaluate": func() error { _, err := Evaluate(context.Background(), EvaluateOptions{Config: cfg}); return err },
	} {
		err := f()
		var fe *config.FieldError
		if !errors.Is(err, ErrInvalidInput) || !errors.Is(err, config.ErrInvalid) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "training.max_steps") {
			t.Errorf("%s with max_steps -1: %v, want ErrInvalidInput, config.ErrInvalid and a FieldError naming the key", call, err)
		}
	}
}

// TestChatWithoutMessagesIsRefused: Chat with no messages replied to the
// template's bare generation prompt (a history lost by the caller went
// unnoticed); it is now refused as invalid input.
func TestChatWithoutMessagesIsRefused(t *testing.T) {
	m := tinyModel(t)
	for _, msgs := range [][]Message{nil, {}} {
		r, err := m.Chat(context.Background(), msgs, GenerateOptions{MaxNewTokens: 2})
		if !errors.Is(err, ErrInvalidInput) || r.Tokens != 0 {
			t.Errorf("Chat(%v): %q, %v, want ErrInvalidInput and no reply", msgs, r.Text, err)
		}
	}
}

// cancelOnWrite cancels when the first line is written to it.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (w cancelOnWrite) Write(p []byte) (int, error) { w.cancel(); return len(p), nil }

// TestLoadContextStops: Load took no context, so a service could not give
// up on a model loading for minutes. LoadContext stops between stages:
// cancelled before, or once the device is opened (its line on Log), it
// returns an error wrapping context.Canceled, without reading the
// weights; a nil ctx is invalid input.
func TestLoadContextStops(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := LoadContext(ctx, TinyBase, LoadOptions{}); m != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v, %v; want context.Canceled", m, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if m, err := LoadContext(ctx, TinyBase, LoadOptions{Device: "cpu", Log: cancelOnWrite{cancel}}); m != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled once the device was opened: %v, %v; want context.Canceled", m, err)
	}
	var nilCtx context.Context
	if _, err := LoadContext(nilCtx, TinyBase, LoadOptions{}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("nil ctx: %v, want ErrInvalidInput", err)
	}
	if m, err := LoadContext(context.Background(), TinyBase, LoadOptions{}); err != nil || m.ready("test") != nil {
		t.Errorf("not cancelled: %v", err)
	}
}

// TestMemoryPlanRefusalIsErrMemoryPlan: a run whose memory plan does not
// fit the machine is refused before its first step with an error a
// caller tells apart through ErrMemoryPlan (it matched nothing exported).
func TestMemoryPlanRefusalIsErrMemoryPlan(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 1)
	cfg.Training.BatchSize = 60000 // rows of activations no machine here holds
	_, err := Train(context.Background(), cfg, nil)
	if !errors.Is(err, ErrMemoryPlan) || !strings.Contains(err.Error(), "the run needs about") {
		t.Fatalf("batch 60000: %v, want ErrMemoryPlan", err)
	}
	if errors.Is(err, ErrInvalidInput) {
		t.Errorf("%v matches ErrInvalidInput: it depends on the machine", err)
	}
}
