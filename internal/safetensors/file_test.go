package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// allFixtureFiles lists every .safetensors file of the copied fixtures and
// of the tiny-base model.
func allFixtureFiles(t *testing.T) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(fixture(), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".safetensors") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, tinyBase("model.safetensors"), tinyBase("golden.safetensors"))
	if len(paths) < 20 {
		t.Fatalf("found only %d fixture files; is testdata/fixtures complete?", len(paths))
	}
	return paths
}

// Reading each real file and writing its tensors back must reproduce the
// file byte for byte: this checks the reader against files made by Python's
// safetensors and the writer's layout, header and padding against it too.
func TestFixturesRoundTripByteIdentical(t *testing.T) {
	for _, path := range allFixtureFiles(t) {
		t.Run(path, func(t *testing.T) {
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			names := f.Names()
			if len(names) == 0 || !slices.IsSorted(names) || len(names) != f.Len() {
				t.Fatalf("Names() = %v: want a non-empty sorted list of Len() names", names)
			}
			var tensors []Tensor
			for _, n := range names {
				tn, err := f.Tensor(n)
				if err != nil {
					t.Fatal(err)
				}
				if len(tn.Data) != tn.NumElements()*tn.DType.Size() {
					t.Fatalf("%s: %d bytes for shape %v of %s", n, len(tn.Data), tn.Shape, tn.DType)
				}
				tensors = append(tensors, tn)
			}
			var buf bytes.Buffer
			if err := encode(&buf, tensors, f.Metadata()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), orig) {
				n := binary.LittleEndian.Uint64(orig)
				t.Fatalf("re-encoded file differs from the original\n got header %.300s\nwant header %.300s",
					buf.Bytes()[8:], orig[8:8+n])
			}
		})
	}
}

// llamaConfig is the part of config.json that fixes the tensor shapes.
type llamaConfig struct {
	Vocab        int  `json:"vocab_size"`
	Hidden       int  `json:"hidden_size"`
	Intermediate int  `json:"intermediate_size"`
	Layers       int  `json:"num_hidden_layers"`
	Heads        int  `json:"num_attention_heads"`
	KVHeads      int  `json:"num_key_value_heads"`
	HeadDim      int  `json:"head_dim"`
	Tied         bool `json:"tie_word_embeddings"`
}

// expectedLlamaShapes derives the Hugging Face Llama parameter names and
// shapes from a config, independently of the file being checked.
func expectedLlamaShapes(t *testing.T, configPath string) map[string][]int {
	t.Helper()
	raw, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	var c llamaConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.HeadDim == 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	h, q, kv := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	want := map[string][]int{
		"model.embed_tokens.weight": {c.Vocab, h},
		"model.norm.weight":         {h},
	}
	if !c.Tied {
		want["lm_head.weight"] = []int{c.Vocab, h}
	}
	for l := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		want[p+"input_layernorm.weight"] = []int{h}
		want[p+"post_attention_layernorm.weight"] = []int{h}
		want[p+"self_attn.q_proj.weight"] = []int{q, h}
		want[p+"self_attn.k_proj.weight"] = []int{kv, h}
		want[p+"self_attn.v_proj.weight"] = []int{kv, h}
		want[p+"self_attn.o_proj.weight"] = []int{h, q}
		want[p+"mlp.gate_proj.weight"] = []int{c.Intermediate, h}
		want[p+"mlp.up_proj.weight"] = []int{c.Intermediate, h}
		want[p+"mlp.down_proj.weight"] = []int{h, c.Intermediate}
	}
	return want
}

func TestModelShapesMatchConfig(t *testing.T) {
	cases := []struct {
		dir    string
		dtype  DType
		params int // documented parameter count; 0 if none is documented
	}{
		{fixture("llama-tiny"), F32, 0},
		{filepath.Dir(tinyBase("model.safetensors")), BF16, 5_475_584}, // from its README
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			want := expectedLlamaShapes(t, filepath.Join(tc.dir, "config.json"))
			s, err := OpenDir(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Names(); len(got) != len(want) {
				t.Fatalf("%d tensors, want %d from config.json: %v", len(got), len(want), got)
			}
			params := 0
			for name, shape := range want {
				tn, err := s.Tensor(name)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(tn.Shape, shape) || tn.DType != tc.dtype {
					t.Fatalf("%s: %v %s, want %v %s", name, tn.Shape, tn.DType, shape, tc.dtype)
				}
				params += tn.NumElements()
			}
			if tc.params != 0 && params != tc.params {
				t.Fatalf("%d parameters, want %d", params, tc.params)
			}
		})
	}
}

// The values in the fixture files must equal the copies that meta.json
// holds as JSON numbers (written by the same Python run). Exact equality is
// right: the JSON holds each float32 widened to float64, which converts back
// without loss.
func TestFixtureValuesMatchMetaJSON(t *testing.T) {
	raw, err := os.ReadFile(fixture("llama-tiny", "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		LossBase       float64   `json:"loss_base"`
		AdamWLosses    []float64 `json:"adamw_losses"`
		GenerateOutput [][]int64 `json:"generate_output"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	floats := func(file, name string) []float32 {
		f, err := Open(fixture("llama-tiny", file))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tn, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if tn.DType != F32 {
			t.Fatalf("%s: dtype %s, want F32", name, tn.DType)
		}
		out := make([]float32, tn.NumElements())
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(tn.Data[4*i:]))
		}
		return out
	}
	if loss := floats("outputs_base.safetensors", "loss"); len(loss) != 1 || loss[0] != float32(meta.LossBase) {
		t.Fatalf("loss = %v, want [%v]", loss, meta.LossBase)
	}
	got := floats("outputs_lora.safetensors", "adamw_losses")
	if len(got) != len(meta.AdamWLosses) || len(got) == 0 {
		t.Fatalf("adamw_losses has %d values, want %d", len(got), len(meta.AdamWLosses))
	}
	for i := range got {
		if got[i] != float32(meta.AdamWLosses[i]) {
			t.Fatalf("adamw_losses[%d] = %v, want %v", i, got[i], meta.AdamWLosses[i])
		}
	}

	f, err := Open(fixture("llama-tiny", "inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gen, err := f.Tensor("generate_output")
	if err != nil {
		t.Fatal(err)
	}
	want := meta.GenerateOutput[0]
	if gen.DType != I64 || !slices.Equal(gen.Shape, []int{1, len(want)}) {
		t.Fatalf("generate_output: %s %v, want I64 [1 %d]", gen.DType, gen.Shape, len(want))
	}
	for i, w := range want {
		if v := int64(binary.LittleEndian.Uint64(gen.Data[8*i:])); v != w {
			t.Fatalf("generate_output[%d] = %d, want %d", i, v, w)
		}
	}
}

func TestFileAccessors(t *testing.T) {
	path := fixture("llama-tiny", "model.safetensors")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path() != path {
		t.Fatalf("Path() = %q", f.Path())
	}
	if md := f.Metadata(); md["format"] != "pt" {
		t.Fatalf("Metadata() = %v, want format=pt as save_pretrained writes", md)
	}
	md := f.Metadata()
	md["format"] = "changed"
	if f.Metadata()["format"] != "pt" {
		t.Fatal("Metadata() exposes the file's own map")
	}
	names := f.Names()
	names[0] = "changed"
	if f.Names()[0] == "changed" || f.Has("changed") {
		t.Fatal("Names() exposes the file's own slice")
	}
	tn, err := f.Tensor("model.norm.weight")
	if err != nil {
		t.Fatal(err)
	}
	if cap(tn.Data) != len(tn.Data) {
		t.Fatalf("Data capacity %d > length %d: an append would overwrite the next tensor", cap(tn.Data), len(tn.Data))
	}
	tn.Shape[0] = -1
	if again, _ := f.Tensor("model.norm.weight"); again.Shape[0] == -1 {
		t.Fatal("Tensor() exposes the header's shape slice")
	}

	_, err = f.Tensor("model.no_such.weight")
	checkErr(t, err, ErrNotFound, []string{path, `"model.no_such.weight"`})

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = f.Tensor("model.norm.weight")
	checkErr(t, err, ErrClosed, []string{path})
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.safetensors")
	_, err := Open(missing)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Open(missing): err = %v, want os.ErrNotExist naming the path", err)
	}
	dir := t.TempDir()
	_, err = Open(dir)
	checkErr(t, err, ErrNotFound, []string{dir, "is a directory"})
}

// FloatsInto reuses the buffer it is given when it is large enough, and
// decodes the same values as Floats.
func TestFloatsIntoReusesBuffer(t *testing.T) {
	ten := Tensor{Name: "x", DType: BF16, Shape: []int{3}, Data: []byte{0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0}}
	buf := make([]float32, 8)
	got, err := FloatsInto(buf, ten)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 2, -3}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("FloatsInto = %v, want %v", got, want)
	}
	if &got[0] != &buf[0] {
		t.Error("FloatsInto allocated although the buffer holds 8 values")
	}
	small := make([]float32, 2)
	got, err = FloatsInto(small, ten)
	if err != nil || len(got) != 3 || got[2] != -3 {
		t.Fatalf("FloatsInto into a short buffer = %v, %v", got, err)
	}
	if _, err := FloatsInto(buf, Tensor{Name: "i", DType: I64, Shape: []int{1}, Data: make([]byte, 8)}); err == nil {
		t.Error("FloatsInto decoded an I64 tensor as floats")
	}
}
