package safetensors

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/fsutil"
)

// shardTensors makes n F32 tensors of 4*size bytes each.
func shardTensors(n, size int) []Tensor {
	var ts []Tensor
	for i := range n {
		vals := make([]float32, size)
		for j := range vals {
			vals[j] = float32(i*1000 + j)
		}
		ts = append(ts, Tensor{Name: "layer." + string(rune('a'+i)) + ".weight", DType: F32, Shape: []int{size}, Data: f32(vals...)})
	}
	return ts
}

func readIndex(t *testing.T, path string) (map[string]string, int64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	return idx.WeightMap, idx.Metadata.TotalSize
}

func TestWriteShardedAndOpenDir(t *testing.T) {
	dir := t.TempDir()
	in := shardTensors(7, 10) // 40 bytes each
	// 100 bytes per shard holds two tensors: 7 tensors make 4 shards.
	if err := WriteSharded(dir, "model", in, 100, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{
		"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
		"model.safetensors.index.json",
	}
	if got := listDir(t, dir); !slices.Equal(got, wantFiles) {
		t.Fatalf("folder holds %v, want %v", got, wantFiles)
	}
	weightMap, total := readIndex(t, filepath.Join(dir, "model.safetensors.index.json"))
	if total != 7*40 || len(weightMap) != 7 {
		t.Fatalf("index: total_size %d, %d entries; want 280 and 7", total, len(weightMap))
	}
	for _, shard := range wantFiles[:4] {
		st, err := os.Stat(filepath.Join(dir, shard))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			t.Fatal(err)
		}
		data := 0
		for _, n := range f.Names() {
			tn, _ := f.Tensor(n)
			data += len(tn.Data)
			if weightMap[n] != shard {
				t.Fatalf("index puts %s in %s, but it is in %s", n, weightMap[n], shard)
			}
		}
		if data > 100 || f.Metadata()["format"] != "pt" {
			t.Fatalf("%s: %d data bytes (limit 100), metadata %v, size %d", shard, data, f.Metadata(), st.Size())
		}
		f.Close()
	}

	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != len(in) || !slices.IsSorted(s.Names()) || len(s.Shards()) != 4 || s.Dir() != dir {
		t.Fatalf("set: %d names, shards %v", s.Len(), s.Shards())
	}
	for _, want := range in {
		got, err := s.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		sameTensor(t, got, want)
	}
	_, err = s.Tensor("nope")
	checkErr(t, err, ErrNotFound, []string{dir, `"nope"`})

	// Saving again with a bigger limit leaves a single file and removes
	// the index and shards of the earlier save.
	if err := WriteSharded(dir, "model", in, 0, nil); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"model.safetensors"}) {
		t.Fatalf("after a single-file save the folder holds %v", got)
	}
	// And sharding again removes the single file.
	if err := WriteSharded(dir, "model", in, 200, nil); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 3 || got[2] != "model.safetensors.index.json" {
		t.Fatalf("after a 2-shard save the folder holds %v", got)
	}
}

func TestWriteShardedOversizedTensorGetsOwnShard(t *testing.T) {
	dir := t.TempDir()
	in := []Tensor{
		{Name: "a", DType: U8, Shape: []int{10}, Data: make([]byte, 10)},
		{Name: "b", DType: U8, Shape: []int{500}, Data: make([]byte, 500)},
		{Name: "c", DType: U8, Shape: []int{10}, Data: make([]byte, 10)},
	}
	if err := WriteSharded(dir, "adapter_model", in, 100, nil); err != nil {
		t.Fatal(err)
	}
	weightMap, _ := readIndex(t, filepath.Join(dir, "adapter_model.safetensors.index.json"))
	want := map[string]string{
		"a": "adapter_model-00001-of-00003.safetensors",
		"b": "adapter_model-00002-of-00003.safetensors",
		"c": "adapter_model-00003-of-00003.safetensors",
	}
	for k, v := range want {
		if weightMap[k] != v {
			t.Fatalf("weight_map = %v, want %v", weightMap, want)
		}
	}
	s, err := OpenDirPrefix(dir, "adapter_model")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 3 {
		t.Fatalf("%d tensors, want 3", s.Len())
	}
}

func TestWriteShardedRejects(t *testing.T) {
	dir := t.TempDir()
	err := WriteSharded(dir, "../model", shardTensors(1, 1), 0, nil)
	checkErr(t, err, ErrInvalid, []string{"prefix"})
	err = WriteSharded(dir, "model", []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: f32(1)}}, 0, nil)
	checkErr(t, err, ErrInvalid, []string{`tensor "x"`, "want 8"})
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("rejected saves left %v", got)
	}
}

func TestOpenDirFixtures(t *testing.T) {
	s, err := OpenDirPrefix(fixture("llama-tiny", "adapter_init"), "adapter_model")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range s.Names() {
		if !strings.Contains(n, "lora_A") && !strings.Contains(n, "lora_B") {
			t.Fatalf("unexpected tensor %q in a LoRA adapter", n)
		}
	}
	if s.Len() == 0 || !slices.Equal(s.Shards(), []string{"adapter_model.safetensors"}) {
		t.Fatalf("%d tensors in %v", s.Len(), s.Shards())
	}
}

// writeShardedFixture makes a 2-shard model folder to corrupt.
func writeShardedFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteSharded(dir, "model", shardTensors(4, 10), 80, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenDirErrors(t *testing.T) {
	indexPath := func(dir string) string { return filepath.Join(dir, "model.safetensors.index.json") }
	cases := []struct {
		name   string
		modify func(t *testing.T, dir string)
		is     error
		want   []string
	}{
		{"empty folder", func(t *testing.T, dir string) {
			for _, n := range listDir(t, dir) {
				os.Remove(filepath.Join(dir, n))
			}
		}, ErrNotFound, []string{"model.safetensors.index.json"}},
		{"pickle weights instead", func(t *testing.T, dir string) {
			for _, n := range listDir(t, dir) {
				os.Remove(filepath.Join(dir, n))
			}
			os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("PK"), 0o644)
		}, ErrNotFound, []string{"holds pytorch_model.bin", "pickle", "safe_serialization=True"}},
		{"missing shard", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		}, os.ErrNotExist, []string{"model-00002-of-00002.safetensors", "index.json"}},
		{"corrupt shard", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []byte("garbage!!"), 0o644)
		}, ErrCorrupt, []string{"model-00001-of-00002.safetensors"}},
		{"tensor not in its shard", func(t *testing.T, dir string) {
			os.WriteFile(indexPath(dir), []byte(`{"weight_map":{"layer.a.weight":"model-00002-of-00002.safetensors"}}`), 0o644)
		}, ErrCorrupt, []string{`"layer.a.weight"`, "model-00002-of-00002.safetensors", "does not hold it"}},
		{"shard outside folder", func(t *testing.T, dir string) {
			os.WriteFile(indexPath(dir), []byte(`{"weight_map":{"w":"../model-00001-of-00002.safetensors"}}`), 0o644)
		}, ErrCorrupt, []string{`weight_map["w"]`, "inside the folder"}},
		{"invalid index JSON", func(t *testing.T, dir string) {
			os.WriteFile(indexPath(dir), []byte(`{"weight_map":`), 0o644)
		}, ErrCorrupt, []string{"index.json", "invalid index JSON"}},
		{"no weight_map", func(t *testing.T, dir string) {
			os.WriteFile(indexPath(dir), []byte(`{"metadata":{}}`), 0o644)
		}, ErrCorrupt, []string{"weight_map is missing"}},
		{"shard name not a string", func(t *testing.T, dir string) {
			os.WriteFile(indexPath(dir), []byte(`{"weight_map":{"w":3}}`), 0o644)
		}, ErrCorrupt, []string{`weight_map["w"] is 3`}},
		{"8 GiB index (sparse)", func(t *testing.T, dir string) {
			if err := os.Truncate(indexPath(dir), 8<<30); err != nil {
				t.Fatal(err)
			}
		}, fsutil.ErrTooLarge, []string{"model.safetensors.index.json is 8.0 GiB", "at most 64.0 MiB"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeShardedFixture(t)
			tc.modify(t, dir)
			s, err := OpenDir(dir)
			if err == nil {
				s.Close()
			}
			checkErr(t, err, tc.is, tc.want)
		})
	}
}

func TestSetClose(t *testing.T) {
	s, err := OpenDir(writeShardedFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Tensor("layer.a.weight"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Tensor after Close: err = %v, want ErrClosed", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// transformers loads model.safetensors when it exists, whatever index lies
// beside it; OpenDir must agree.
func TestOpenDirPrefersSingleFile(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "model.safetensors"), shardTensors(2, 3), nil); err != nil {
		t.Fatal(err)
	}
	bogus := `{"weight_map":{"x":"model-00001-of-00009.safetensors"}}`
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(bogus), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 2 || !slices.Equal(s.Shards(), []string{"model.safetensors"}) {
		t.Fatalf("opened %d tensors from %v, want 2 from model.safetensors", s.Len(), s.Shards())
	}
}
