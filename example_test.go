package ftune_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune"
)

// Load a model and ask it one question (greedy decoding).
func ExampleModel_Chat() {
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	msgs := []ftune.Message{{Role: "user", Content: "Which element has atomic number 26?"}}
	r, err := m.Chat(context.Background(), msgs, ftune.GenerateOptions{MaxNewTokens: 8})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q (%d tokens, %s)\n", r.Text, r.Tokens, r.Stopped)
	// Output: "than’s time, and the" (8 tokens, length)
}

// Stream a plain-text continuation as it is produced.
func ExampleModel_Generate() {
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.Generate(context.Background(), "The capital of France is", ftune.GenerateOptions{
		MaxNewTokens: 6,
		OnText:       func(s string) error { fmt.Print(s); return nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	// Output: now in progress. The Government
}

// A conversation keeps its turns (and drops the oldest when the context
// would overflow).
func ExampleConversation_Send() {
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	c := m.NewConversation("You answer in one word.")
	for _, q := range []string{"Symbol of iron?", "And of gold?"} {
		r, err := c.Send(context.Background(), q, ftune.GenerateOptions{MaxNewTokens: 4})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %q\n", q, r.Text)
	}
	fmt.Println(len(c.Messages), "messages kept")
	// Output:
	// Symbol of iron? "than any of"
	// And of gold? "than tom"
	// 4 messages kept
}

// Fine-tune on examples held in memory, then load the adapter (onto the
// base it records) and export it merged.
func ExampleFineTune() {
	dir, err := os.MkdirTemp("", "ftune-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	examples := []ftune.Example{
		{Messages: []ftune.Message{{Role: "user", Content: "Symbol of iron?"}, {Role: "assistant", Content: "Fe"}}},
		{Messages: []ftune.Message{{Role: "user", Content: "Symbol of gold?"}, {Role: "assistant", Content: "Au"}}},
	}
	cfg := ftune.DefaultConfig()
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength = 2, 2, 32
	cfg.Training.Eval.Generation.Questions, cfg.Training.Eval.Generation.Samples = 0, 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = dir, "example"
	res, err := ftune.FineTune(context.Background(), examples, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("steps:", res.Steps)

	m, err := ftune.Load("", ftune.LoadOptions{Adapter: res.Adapters["default"]})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Export(context.Background(), filepath.Join(dir, "merged"), ftune.ExportOptions{Format: ftune.FormatMerged}); err != nil {
		log.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(dir, "merged", "model.safetensors"))
	fmt.Println("merged model written:", err == nil)
	// Output:
	// steps: 2
	// merged model written: true
}

// Continue pretraining on documents held in memory: each Example.Text is
// learnt whole, without a chat template, and one longer than
// data.max_length is cut into pieces of max_length tokens, each trained
// on (data.long_text: split).
func ExampleFineTune_documents() {
	dir, err := os.MkdirTemp("", "ftune-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var manual strings.Builder
	for i := range 20 {
		fmt.Fprintf(&manual, "Step %d: turn dial %d clockwise until the lamp glows, then press the reset key.\n", i, i)
	}
	docs := []ftune.Example{{Text: manual.String()}, {Text: "The reset key is red. It sits under the lamp."}}
	cfg := ftune.DefaultConfig()
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength = 2, 2, 64
	cfg.Training.Eval.Generation.Questions, cfg.Training.Eval.Generation.Samples = 0, 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = dir, "documents"
	var runLog strings.Builder
	res, err := ftune.FineTune(context.Background(), docs, cfg, &runLog)
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(runLog.String(), "\n") {
		if strings.Contains(line, "are split into") {
			fmt.Println(line)
		}
	}
	fmt.Println("steps:", res.Steps)
	// Output:
	// subject examples: 1 text examples longer than data.max_length (64 tokens) are split into 9 pieces (data.long_text: split; truncate keeps only their start): 1 of them held out for validation (data.val_split 0.1), 8 trained on
	// steps: 2
}

// Teach preferences held in memory with DPO: for each prompt, the reply
// the adapter should make more likely than the other, measured against the
// base model.
func ExampleFineTunePreferences() {
	dir, err := os.MkdirTemp("", "ftune-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ask := func(q string) []ftune.Message { return []ftune.Message{{Role: "user", Content: q}} }
	say := func(a string) []ftune.Message { return []ftune.Message{{Role: "assistant", Content: a}} }
	prefs := []ftune.Preference{
		{Prompt: ask("Symbol of iron?"), Chosen: say("Fe"), Rejected: say("Ir")},
		{Prompt: ask("Symbol of gold?"), Chosen: say("Au"), Rejected: say("Go")},
	}
	cfg := ftune.DefaultConfig()
	cfg.Training.DPO.Beta = 0.1
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength, cfg.Data.ValSplit = 2, 2, 32, 0
	cfg.Training.Checkpointing.Monitor, cfg.Training.Checkpointing.TopK = "", 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = dir, "prefs"
	res, err := ftune.FineTunePreferences(context.Background(), prefs, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("steps:", res.Steps, "adapter saved:", res.Adapters["default"] != "")
	// Output:
	// steps: 2 adapter saved: true
}

// Teach from thumbs-up/thumbs-down feedback held in memory with KTO: each
// record is one reply to a prompt, labelled desirable or not, measured
// against the base model.
func ExampleFineTuneFeedback() {
	dir, err := os.MkdirTemp("", "ftune-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ask := func(q string) []ftune.Message { return []ftune.Message{{Role: "user", Content: q}} }
	say := func(a string) []ftune.Message { return []ftune.Message{{Role: "assistant", Content: a}} }
	feedback := []ftune.Feedback{
		{Prompt: ask("Symbol of iron?"), Completion: say("Fe"), Desirable: true},
		{Prompt: ask("Symbol of gold?"), Completion: say("Go"), Desirable: false},
		{Prompt: ask("Symbol of silver?"), Completion: say("Ag"), Desirable: true},
		{Prompt: ask("Symbol of lead?"), Completion: say("Le"), Desirable: false},
	}
	cfg := ftune.DefaultConfig()
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength, cfg.Data.ValSplit = 2, 2, 32, 0
	cfg.Training.Checkpointing.Monitor, cfg.Training.Checkpointing.TopK = "", 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = dir, "feedback"
	res, err := ftune.FineTuneFeedback(context.Background(), feedback, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("steps:", res.Steps, "adapter saved:", res.Adapters["default"] != "")
	// Output:
	// steps: 2 adapter saved: true
}

// Evaluate tiny-base on one bundled subject: validation loss and one
// held-out question.
func ExampleEvaluate() {
	cfg := ftune.DefaultConfig()
	cfg.Data.Subjects = []string{"chemistry"}
	cfg.Training.Eval.Generation.Questions, cfg.Training.Eval.Generation.Samples = 1, 0
	cfg.Training.Eval.MaxBatches = 1
	ev, err := ftune.Evaluate(context.Background(), ftune.EvaluateOptions{Config: cfg})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("validation loss measured:", ev.Val["val/loss"] > 0)
	fmt.Println("questions asked:", len(ev.QA.Results))
	// Output:
	// validation loss measured: true
	// questions asked: 1
}
