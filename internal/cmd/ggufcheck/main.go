package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ggufcheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) >= 2 && args[0] == "tiny":
		model := filepath.Join("assets", "models", "tiny-base")
		if len(args) > 2 {
			model = args[2]
		}
		return tiny(args[1], model)
	case len(args) == 2 && args[0] == "dump":
		return dump(args[1])
	case len(args) == 3 && args[0] == "same":
		return same(args[1], args[2])
	case len(args) == 2 && args[0] == "hashes":
		return hashes(args[1])
	case len(args) == 4 && args[0] == "imatrix":
		bound, err := strconv.ParseFloat(args[3], 64)
		if err != nil {
			return fmt.Errorf("imatrix bound %q: %w", args[3], err)
		}
		return sameImatrix(args[1], args[2], bound)
	case len(args) >= 2 && args[0] == "reference":
		model := filepath.Join("assets", "models", "tiny-base")
		if len(args) > 2 {
			model = args[2]
		}
		if err := tiny(args[1], model); err != nil {
			return err
		}
		return reference(args[1], model)
	}
	return fmt.Errorf("usage: ggufcheck tiny OUTDIR [MODELDIR] | ggufcheck dump FILE | ggufcheck same FILE OTHER | ggufcheck imatrix FILE OTHER BOUND | ggufcheck hashes FILE | ggufcheck reference OUTDIR [MODELDIR]")
}

func tiny(out, model string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	m, err := nn.Load(model, nn.LoadOptions{})
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(model)
	if err != nil {
		return err
	}
	tmpl, _ := os.ReadFile(filepath.Join(model, "chat_template.jinja"))
	for _, ft := range []gguf.FileType{gguf.FileF32, gguf.FileF16, gguf.FileQ8_0, gguf.FileQ4_0, gguf.FileQ2_K, gguf.FileQ3_K_S, gguf.FileQ3_K_M, gguf.FileQ3_K_L, gguf.FileQ4_K_S, gguf.FileQ4_K_M, gguf.FileQ5_K_S, gguf.FileQ5_K_M, gguf.FileQ6_K} {
		p := filepath.Join(out, "tiny-"+ft.String()+".gguf")
		if err := gguf.WriteModel(p, m, tok, string(tmpl), ft); err != nil {
			return err
		}
		fmt.Println(p)
	}
	a, err := checkAdapter(m)
	if err != nil {
		return err
	}
	p := filepath.Join(out, "tiny-lora-F16.gguf")
	if err := gguf.WriteLoRA(p, m, a, gguf.FileF16); err != nil {
		return err
	}
	fmt.Println(p)
	return nil
}

// checkAdapter is the adapter every mode uses: q, k, v (Phi-3: the fused
// qkv), o and down with a random B (a visible update), rank 8, alpha 16,
// seed 1.
func checkAdapter(m *nn.Model) (*lora.Adapter, error) {
	c := lora.NewConfig(8, 16, "q_proj", "k_proj", "v_proj", "o_proj", "down_proj")
	if m.Config.FusedProjections {
		c = lora.NewConfig(8, 16, "qkv_proj", "o_proj", "down_proj")
	}
	c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
	return lora.New(m, c, "check", 1)
}

type tensorDump struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Dims   []uint64  `json:"dims"`
	Offset uint64    `json:"offset"`
	First  []float64 `json:"first"`
	Sum    float64   `json:"sum"`
	SumSq  float64   `json:"sumsq"`
}

func dump(path string) error {
	f, err := gguf.Read(path)
	if err != nil {
		return err
	}
	defer f.Close()
	meta := map[string]string{}
	for _, kv := range f.Metadata {
		meta[kv.Key] = fmt.Sprintf("%T", kv.Value)
	}
	var ts []tensorDump
	for _, ti := range f.Tensors {
		v, err := f.Float32(ti.Name)
		if err != nil {
			return err
		}
		d := tensorDump{Name: ti.Name, Type: ti.Type.String(), Dims: ti.Dims, Offset: ti.Offset}
		for i, x := range v {
			if i < 64 {
				d.First = append(d.First, float64(x))
			}
			d.Sum += float64(x)
			d.SumSq += float64(x) * float64(x)
		}
		if math.IsNaN(d.Sum) {
			return fmt.Errorf("%s: NaN values", ti.Name)
		}
		ts = append(ts, d)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"version": f.Version, "alignment": f.Alignment, "data_start": f.DataStart,
		"metadata": meta, "tensors": ts,
	})
}

// same checks that two model files hold the same tensors, each of the
// same type, shape and bytes (a file ftune quantized against llama-quantize's
// quantization of ftune's F32 file), and prints how many tensors of each
// type they hold.
func same(path, other string) error {
	a, err := gguf.Read(path)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := gguf.Read(other)
	if err != nil {
		return err
	}
	defer b.Close()
	if len(a.Tensors) != len(b.Tensors) {
		return fmt.Errorf("%s has %d tensors, %s %d", path, len(a.Tensors), other, len(b.Tensors))
	}
	types := map[string]int{}
	for _, ta := range a.Tensors {
		tb, ok := b.Tensor(ta.Name)
		if !ok {
			return fmt.Errorf("%s: not in %s", ta.Name, other)
		}
		if ta.Type != tb.Type || fmt.Sprint(ta.Dims) != fmt.Sprint(tb.Dims) {
			return fmt.Errorf("%s: %s %v in %s, %s %v in %s", ta.Name, ta.Type, ta.Dims, path, tb.Type, tb.Dims, other)
		}
		ra, err := a.Raw(ta.Name)
		if err != nil {
			return err
		}
		rb, err := b.Raw(ta.Name)
		if err != nil {
			return err
		}
		if !bytes.Equal(ra, rb) {
			i := 0
			for i < len(ra) && i < len(rb) && ra[i] == rb[i] {
				i++
			}
			return fmt.Errorf("%s (%s): bytes differ from byte %d of %d", ta.Name, ta.Type, i, len(ra))
		}
		types[ta.Type.String()]++
	}
	fmt.Printf("%d tensors, the same type, shape and bytes: %v\n", len(a.Tensors), types)
	return nil
}

// sameImatrix checks that two importance matrices (ftune's and
// llama-imatrix's of the same model and text) have the same entries, chunks
// and token counts, and importances within bound in relative RMS per entry
// (two implementations sum the same squares in other orders and from
// activations their kernels round differently).
func sameImatrix(path, other string, bound float64) error {
	a, err := gguf.ReadImatrix(path)
	if err != nil {
		return err
	}
	b, err := gguf.ReadImatrix(other)
	if err != nil {
		return err
	}
	if len(a.Entries) != len(b.Entries) || a.ChunkCount != b.ChunkCount || a.ChunkSize != b.ChunkSize {
		return fmt.Errorf("%s: %d entries, %d chunks of %d tokens; %s: %d entries, %d chunks of %d tokens",
			path, len(a.Entries), a.ChunkCount, a.ChunkSize, other, len(b.Entries), b.ChunkCount, b.ChunkSize)
	}
	worst, worstName := 0.0, ""
	for _, name := range a.Names() {
		ea := a.Entries[name]
		eb, ok := b.Entries[name]
		if !ok {
			return fmt.Errorf("%s: not in %s", name, other)
		}
		if fmt.Sprint(ea.Counts) != fmt.Sprint(eb.Counts) || len(ea.SumSquares) != len(eb.SumSquares) {
			return fmt.Errorf("%s: %d values over %v tokens in %s, %d over %v in %s", name, len(ea.SumSquares), ea.Counts, path, len(eb.SumSquares), eb.Counts, other)
		}
		ia, ib := ea.Importance(), eb.Importance()
		var num, den float64
		for i := range ia {
			d := float64(ia[i]) - float64(ib[i])
			num += d * d
			den += float64(ib[i]) * float64(ib[i])
		}
		if r := math.Sqrt(num / max(den, 1e-300)); r > worst {
			worst, worstName = r, name
		}
	}
	if worst > bound {
		return fmt.Errorf("%s: importances differ by %.3g relative RMS (bound %g)", worstName, worst, bound)
	}
	fmt.Printf("%d entries, %d chunks of %d tokens; importances within %.3g relative RMS (worst %s; bound %g)\n", len(a.Entries), a.ChunkCount, a.ChunkSize, worst, worstName, bound)
	return nil
}

// TensorHash is a tensor's type and the sha256 of its bytes, as hashes
// prints them (the golden form of a llama-quantize file that is too large
// to commit).
type TensorHash struct {
	Type   string `json:"type"`
	SHA256 string `json:"sha256"`
}

// hashes prints every tensor's type and sha256 as JSON, by name.
func hashes(path string) error {
	f, err := gguf.Read(path)
	if err != nil {
		return err
	}
	defer f.Close()
	out := map[string]TensorHash{}
	for _, t := range f.Tensors {
		raw, err := f.Raw(t.Name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		out[t.Name] = TensorHash{t.Type.String(), hex.EncodeToString(sum[:])}
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
