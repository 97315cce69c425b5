package track

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCheckAdapter: an adapter in a run folder is checked against the
// hashes of the last version of the manifest that holds it (the final
// adapter, a per-subject one, a checkpoint's); a flipped bit, a file cut
// short or removed is refused naming it; a folder outside any run, or one
// no version lists, is not checked. Before, a damaged adapter generated,
// evaluated and exported without a sign.
func TestCheckAdapter(t *testing.T) {
	run := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(run, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version := func(kind, path string, step int, files ...string) Version {
		v := Version{Kind: kind, Path: path, Step: step, Time: time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)}
		for _, f := range files {
			size, sum, err := hashCache{}.hashFile(filepath.Join(run, filepath.FromSlash(path), filepath.FromSlash(f)))
			if err != nil {
				t.Fatal(err)
			}
			v.Files = append(v.Files, FileHash{Path: f, Size: size, SHA256: sum})
		}
		return v
	}
	write("adapter/adapter_config.json", "{}")
	write("adapter/adapter_model.safetensors", "old weights")
	first := version("export/peft", "adapter", 10, "adapter_config.json", "adapter_model.safetensors")
	write("adapter/adapter_model.safetensors", "new weights")
	last := version("export/peft", "adapter", 20, "adapter_config.json", "adapter_model.safetensors")
	write("adapters/chemistry/adapter_model.safetensors", "chemistry")
	write("adapters/geography/adapter_model.safetensors", "geography")
	subjects := version("export/peft", "adapters", 20, "chemistry/adapter_model.safetensors", "geography/adapter_model.safetensors")
	write("checkpoints/step-00000010/adapter/adapter_model.safetensors", "step 10")
	ckpt := version("checkpoint", "checkpoints/step-00000010", 10, "adapter/adapter_model.safetensors")
	gone := version("checkpoint", "checkpoints/step-00000010", 10, "adapter/adapter_model.safetensors")
	gone.Removed, gone.Files[0].SHA256 = time.Now(), "0000" // a removed entry is not the folder's record
	m := Manifest{Run: "r", Versions: []Version{first, ckpt, last, subjects, gone}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	adapter := filepath.Join(run, "adapter")
	chemistry := filepath.Join(run, "adapters", "chemistry")
	checkpoint := filepath.Join(run, "checkpoints", "step-00000010", "adapter")
	for _, dir := range []string{adapter, chemistry, checkpoint, filepath.Join(run, "adapters")} {
		if err := CheckAdapter(dir); err != nil {
			t.Fatalf("%s as written: %v", dir, err)
		}
	}
	refused := func(dir, want string) {
		t.Helper()
		err := CheckAdapter(dir)
		if !errors.Is(err, ErrAdapterChanged) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want ErrAdapterChanged saying %q", dir, err, want)
		}
	}
	write("adapter/adapter_model.safetensors", "new weightS") // a flipped bit: same size
	refused(adapter, "adapter/adapter_model.safetensors has SHA-256 ")
	refused(adapter, "(export/peft of step 20, 2026-12-07 21:00)")
	write("adapter/adapter_model.safetensors", "new")
	refused(adapter, "adapter_model.safetensors holds 3 bytes, not the 11 of what the run recorded")
	write("adapters/geography/adapter_model.safetensors", "geographY")
	if err := CheckAdapter(chemistry); err != nil {
		t.Fatalf("chemistry, geography changed: %v", err)
	}
	refused(filepath.Join(run, "adapters", "geography"), "geography/adapter_model.safetensors has SHA-256")
	if err := os.Remove(filepath.Join(checkpoint, "adapter_model.safetensors")); err != nil {
		t.Fatal(err)
	}
	refused(checkpoint, "adapter_model.safetensors is missing, unlike what the run recorded")
	// Outside any run folder, and a folder of the run no version lists.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "adapter_model.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("copy/adapter_model.safetensors", "anything")
	for _, dir := range []string{outside, filepath.Join(run, "copy")} {
		if err := CheckAdapter(dir); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	// A file of the adapter that is a named pipe is refused at once (the
	// hash's open waited forever on one nobody writes).
	pipe := filepath.Join(run, "adapters", "chemistry", "adapter_model.safetensors")
	if err := os.Remove(pipe); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- CheckAdapter(chemistry) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is a named pipe") {
			t.Fatalf("a pipe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CheckAdapter waits on a named pipe")
	}
	// A manifest.json that is not a run's (damaged, or a web app's above a
	// downloaded adapter) vouches for nothing: not checked, as outside a
	// run (it refused to load the adapter).
	for _, foreign := range []string{"{", `{"name": "app", "versions": "1.0"}`, `{"name": "app"}`} {
		if err := os.WriteFile(filepath.Join(run, ManifestFile), []byte(foreign), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := CheckAdapter(adapter); err != nil {
			t.Fatalf("manifest %s: %v", foreign, err)
		}
	}
}
