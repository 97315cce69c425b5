package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

// adapterOnOtherBase saves an adapter made on a copy of tiny-base whose
// config.json differs (another base of the same shapes) and returns the
// base's folder and the adapter's.
func adapterOnOtherBase(t *testing.T) (base, adapter string) {
	t.Helper()
	src, err := assets.Model(assets.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	base = testutil.OtherBase(t, src)
	m, err := nn.Load(base, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.New(m, lora.NewConfig(4, 8, "q_proj"), "default", 1)
	if err != nil {
		t.Fatal(err)
	}
	adapter = filepath.Join(t.TempDir(), "adapter")
	if err := a.Save(adapter); err != nil {
		t.Fatal(err)
	}
	return base, adapter
}

// export, generate and eval with --adapter use the adapter's base; before,
// export merged the adapter into tiny-base and printed "wrote".
func TestAdapterCommandsUseTheAdaptersBase(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base, adapter := adapterOnOtherBase(t)
	out := filepath.Join(t.TempDir(), "merged")
	if msg, err := run(t, "export", "--adapter", adapter, "--format", "merged", "--out", out); err != nil || !strings.Contains(msg, base) {
		t.Fatalf("export: %v\n%s", err, msg)
	}
	if cfg, err := os.ReadFile(filepath.Join(out, "config.json")); err != nil || !strings.Contains(string(cfg), "other-base") {
		t.Fatalf("the merged folder is not built on the adapter's base: %v\n%s", err, cfg)
	}
	if msg, err := run(t, "generate", "--adapter", adapter, "--prompt", "Symbol of iron?", "--max-tokens", "2"); err != nil {
		t.Fatalf("generate: %v\n%s", err, msg)
	}
	if msg, err := run(t, "export", "--adapter", adapter, "--model", "tiny-base", "--format", "peft", "--out", filepath.Join(t.TempDir(), "p")); !errors.Is(err, lora.ErrBaseMismatch) {
		t.Fatalf("export onto tiny-base: err = %v, want ErrBaseMismatch\n%s", err, msg)
	}
	if msg, err := run(t, "eval", "--adapter", adapter, "--model", "tiny-base", "--questions", "1"); !errors.Is(err, lora.ErrBaseMismatch) {
		t.Fatalf("eval onto tiny-base: err = %v, want ErrBaseMismatch\n%s", err, msg)
	}
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	if msg, err := run(t, "generate", "--adapter", adapter, "--prompt", "x"); !errors.Is(err, ftune.ErrBaseNotFound) {
		t.Fatalf("generate, base gone: err = %v, want ErrBaseNotFound\n%s", err, msg)
	}
}

// export --format merged never deletes the user's files (issue 12: a
// folder holding a config.json was replaced).
func TestExportMergedKeepsUserFolder(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, adapter := adapterOnOtherBase(t)
	out := t.TempDir()
	for name, content := range map[string]string{"config.json": "{}", "thesis.tex": "years of work"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := run(t, "export", "--adapter", adapter, "--format", "merged", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "thesis.tex") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("export over the user's folder: err = %v\n%s", err, msg)
	}
	if b, err := os.ReadFile(filepath.Join(out, "thesis.tex")); err != nil || string(b) != "years of work" {
		t.Fatal("the user's file is gone")
	}
}

// generate: a prompt longer than the context fails (it printed nothing
// and exited 0); the chat's commands work.
func TestGeneratePromptAndChat(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	if msg, err := run(t, "generate", "--prompt", strings.Repeat("iron ", 3000)); !errors.Is(err, ftune.ErrContextFull) {
		t.Fatalf("long prompt: err = %v, want ErrContextFull\n%.300s", err, msg)
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader("hello\n/help\n/reset\n/bogus\nagain\n/exit\nnot read\n"))
	root.SetArgs([]string{"generate", "--system", "Be brief.", "--max-tokens", "3"})
	// Piped, the unknown command is a line not answered: the chat goes
	// on, and fails at its end (TestChatBatchFailedLines).
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "1 of 3 input lines were not answered (line 4)") {
		t.Fatalf("chat: %v, want line 4 (/bogus) not answered\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"commands: /reset", "(conversation cleared)", "unknown command /bogus"} {
		if !strings.Contains(s, want) {
			t.Errorf("chat output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "> "); n != 6 {
		t.Errorf("%d prompts shown, want 6 (the chat must end at /exit):\n%s", n, s)
	}
}
