package recipe

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestResolveModelHubID: a model.path that is a Hub id (what other
// trainers' configs name, and what ftune init --from keeps) and no
// folder here is refused saying that ftune does not download it and the
// command that does; another missing path keeps the plain error.
func TestResolveModelHubID(t *testing.T) {
	_, err := ResolveModel("no-such-owner/No-Such-Model-1B")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "ftune does not download models from the Hugging Face Hub: download it there (hf download no-such-owner/No-Such-Model-1B --local-dir no-such-owner/No-Such-Model-1B)") {
		t.Errorf("a Hub id: %v", err)
	}
	_, err = ResolveModel("./no/such/folder")
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "Hub") {
		t.Errorf("a missing folder: %v", err)
	}
}

// TestDataFilesHubID: data.files naming a Hub dataset's id that is no
// file or folder here says that ftune does not download it, and how to;
// a missing relative path with no owner/name form keeps the plain error.
func TestDataFilesHubID(t *testing.T) {
	_, _, _, err := resolveDataFiles([]string{"no-such-owner/no-such-data"})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "data.files: no-such-owner/no-such-data: no such file or folder, and ftune does not download datasets from the Hugging Face Hub: download it there (hf download --repo-type dataset no-such-owner/no-such-data --local-dir no-such-owner/no-such-data)") {
		t.Errorf("a Hub id: %v", err)
	}
	_, _, _, err = resolveDataFiles([]string{"no-such-file.jsonl"})
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "Hub") {
		t.Errorf("a missing file: %v", err)
	}
}
