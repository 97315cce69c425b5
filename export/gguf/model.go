package gguf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// QuantizationVersion is general.quantization_version (GGML_QNT_VERSION).
const QuantizationVersion = 2

// Options control WriteModelWith.
type Options struct {
	// Name is general.name; "" uses the output file's base name.
	Name string
	// ChatTemplate is tokenizer.chat_template (Jinja); "" writes none.
	ChatTemplate string
	// FileType is the type of the 2-D weights (F32, F16, BF16, Q8_0) or
	// one of llama-quantize's mixes (Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
	// Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, IQ4_NL, IQ4_XS; typePlan).
	FileType FileType
	// Adapter, when set, is merged into the weights as they are written
	// (the model itself is not changed; an NF4 base is dequantized per
	// tensor first).
	Adapter *lora.Adapter
	// OutputType and EmbeddingType, when set, are the types of the LM
	// head and of the embeddings, in place of what FileType gives them
	// (llama-quantize's --output-tensor-type and --token-embedding-type:
	// Q8_0 for both is a common choice). Tied embeddings are the head:
	// OutputType applies to them unless EmbeddingType is set. A type whose
	// blocks the tensor's rows do not fill is refused.
	OutputType, EmbeddingType *TensorType
	// Importance, when set, weighs each quantized weight's columns by the
	// mean square input it saw (llama-quantize --imatrix): only for the
	// mixes. Weights it has no entry for (the LM head, tied
	// embeddings) are quantized without, as llama-quantize does
	// (ImportanceNotes names them).
	Importance *Imatrix
}

// WriteModel writes m as a llama.cpp model file: weights of file type
// ftype, hyperparameters, RoPE settings and the tokenizer.
func WriteModel(path string, m *nn.Model, tok *tokenizer.Tokenizer, chatTemplate string, ftype FileType) error {
	return WriteModelWith(context.Background(), path, m, tok, Options{ChatTemplate: chatTemplate, FileType: ftype})
}

// WriteModelWith is WriteModel with every option. The file is written
// atomically, one weight at a time (merged with the adapter, converted and
// encoded as it is written): beyond the model, it holds one weight in
// memory. A cancelled ctx stops it before the next weight, leaving no
// file.
//
// Tensor types follow convert_hf_to_gguf.py: 1-D tensors (norms, biases,
// rope_freqs) are F32; 2-D weights take the file type, except a weight
// whose rows do not fill whole quantization blocks, which falls back to F16
// as the converter's does.
func WriteModelWith(ctx context.Context, path string, m *nn.Model, tok *tokenizer.Tokenizer, opt Options) error {
	if tok == nil {
		return fmt.Errorf("gguf: %s: no tokenizer: llama.cpp cannot load a model file without one", path)
	}
	b, err := BuildModel(ctx, m, tok, opt, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	if err != nil {
		return err
	}
	if err := fsutil.CheckRoom(path, b.DataSize()); err != nil {
		return fmt.Errorf("gguf: %w", err) // before minutes of writing
	}
	if err := b.WriteFile(path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// BuildModel prepares the file WriteModelWith writes; name is the default
// general.name. A nil tok writes no tokenizer keys (for tests of the
// weights alone: llama.cpp cannot load such a file). The weights are read
// from m when the builder writes them, checking ctx before each.
func BuildModel(ctx context.Context, m *nn.Model, tok *tokenizer.Tokenizer, opt Options, name string) (*Builder, error) {
	c := m.Config
	arch, permute, err := Architecture(c.ModelType)
	if err != nil {
		return nil, err
	}
	if err := checkComputable(arch, c); err != nil {
		return nil, err
	}
	wtype, err := opt.FileType.TensorType()
	if err != nil {
		return nil, err
	}
	plan := newTypePlan(opt, wtype, c)
	if err := checkOverrides(m, opt); err != nil {
		return nil, err
	}
	if opt.Importance != nil && len(opt.Importance.Entries) == 0 {
		return nil, errors.New("gguf: the importance matrix holds no entries")
	}
	if opt.Importance != nil && !opt.FileType.isMix() {
		return nil, fmt.Errorf("gguf: an importance matrix guides llama-quantize's mixes (q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m, q6_k, iq4_nl, iq4_xs); %s does not use one", opt.FileType)
	}
	src, err := export.NewSource(m, opt.Adapter)
	if err != nil {
		return nil, err
	}
	if opt.Name != "" {
		name = opt.Name
	}
	b := NewBuilder(arch)
	b.Set("general.type", "model")
	b.Set("general.name", name)
	b.Set(WrittenByKey, WrittenBy)
	if err := setHyperparameters(b, arch, c); err != nil {
		return nil, err
	}
	b.Set("general.file_type", uint32(opt.FileType))
	b.Set("general.quantization_version", uint32(QuantizationVersion))
	if im := opt.Importance; im != nil {
		// The keys llama-quantize --imatrix records.
		if im.Path != "" {
			b.Set("quantize.imatrix.file", im.Path)
		}
		if len(im.Datasets) > 0 {
			b.Set("quantize.imatrix.dataset", im.Datasets[0])
		}
		b.Set("quantize.imatrix.entries_count", uint32(len(im.Entries)))
		if im.ChunkCount > 0 {
			b.Set("quantize.imatrix.chunks_count", uint32(im.ChunkCount))
		}
	}
	if tok != nil {
		if err := setVocab(b, tok, c, opt.ChatTemplate); err != nil {
			return nil, err
		}
	}
	if arch == "phi3" {
		if err := addPhi3RopeFactors(b, c); err != nil {
			return nil, err
		}
	}
	if c.Rope.Type == "llama3" {
		f := llama3RopeFactors(c)
		if err := b.AddTensor("rope_freqs.weight", []int{len(f)}, F32, f); err != nil {
			return nil, err
		}
	}
	if src.Untied() {
		return nil, fmt.Errorf("gguf: adapter %q trained a copy of the embeddings or the LM head (modules_to_save) on a model that ties them (%s): the merged model has separate tables, which llama.cpp's %s architecture may not read; export it with --format merged instead", opt.Adapter.Name, c.ModelType, arch)
	}
	matched := 0 // weights the importance matrix has an entry for
	for _, hf := range orderedNames(src.Names()) {
		gname, err := TensorNameFor(arch, hf)
		if err != nil {
			return nil, err
		}
		heads := 0
		if permute {
			switch {
			case strings.HasSuffix(hf, ".q_proj.weight"), strings.HasSuffix(hf, ".q_proj.bias"):
				heads = c.NumHeads
			case strings.HasSuffix(hf, ".k_proj.weight"), strings.HasSuffix(hf, ".k_proj.bias"):
				heads = c.NumKVHeads
			}
		}
		shape := src.Shape(hf)
		// Each weight is merged, converted and encoded when Write reaches
		// it: the file's weights are never all in memory at once.
		values := func() ([]float32, error) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("gguf: stopped before %s: %w", hf, err)
			}
			w, err := src.Float32(hf)
			if err != nil {
				return nil, err
			}
			if gemmaNorms(arch) && strings.HasSuffix(hf, "norm.weight") {
				// llama.cpp's gemma3 multiplies by the stored weight;
				// Gemma's RMSNorm by 1 + w (the converter's norm_shift).
				w = plusOne(w)
			}
			if heads > 0 {
				cols := 1
				if len(shape) == 2 {
					cols = shape[1]
				}
				if w, err = PermuteQK(w, heads, cols); err != nil {
					return nil, fmt.Errorf("gguf: %s: %w", hf, err)
				}
			}
			return w, nil
		}
		typ, _ := plan.tensorType(gname, shape)
		cols := shape[len(shape)-1]
		var importance []float32
		if opt.Importance != nil {
			if importance, err = opt.Importance.importance(gname, cols); err != nil {
				return nil, err
			}
			if importance != nil {
				matched++
			}
			if !takesImportance(typ) {
				importance = nil // Q8_0 and the float types do not use it
			}
		}
		bitsOK := heads == 0 && !(gemmaNorms(arch) && strings.HasSuffix(hf, "norm.weight"))
		// Each weight is merged, converted and encoded when Write reaches
		// it; a bf16 weight the adapter leaves (the embeddings among them)
		// is encoded from its bits a chunk of rows at a time, without a
		// float32 copy of the whole tensor.
		encode := func() ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("gguf: stopped before %s: %w", hf, err)
			}
			var data []byte
			var err error
			if bits, ok := src.BF16Bits(hf); ok && bitsOK {
				data, err = encodeBF16Rows(typ, bits, cols, importance)
			} else {
				var w []float32
				if w, err = values(); err != nil {
					return nil, err
				}
				data, err = encodeRows(nil, typ, w, cols, importance)
			}
			if err != nil {
				return nil, fmt.Errorf("gguf: tensor %q: %w", gname, err)
			}
			return data, nil
		}
		if err := b.AddTensorBytesFunc(gname, shape, typ, encode); err != nil {
			return nil, err
		}
	}
	if opt.Importance != nil && matched == 0 {
		return nil, fmt.Errorf("gguf: importance matrix %s has no entry for any weight of this model (it has %d, e.g. %q): was it computed for another model?", opt.Importance.Path, len(opt.Importance.Entries), opt.Importance.Names()[0])
	}
	return b, nil
}

// encodeChunkValues is how many values encodeBF16Rows widens at a time
// (16 MiB of float32; a variable so that a test can make tiny-base's
// tensors span several chunks).
var encodeChunkValues = 4 << 20

// encodeRows appends x, rows of rowLen values, encoded as typ to out,
// weighing the columns by importance when it is not nil.
func encodeRows(out []byte, typ TensorType, x []float32, rowLen int, importance []float32) ([]byte, error) {
	if importance != nil {
		return AppendEncodedWeighted(out, typ, x, rowLen, importance)
	}
	if out == nil {
		n, err := typ.RowBytes(len(x))
		if err != nil {
			return nil, err
		}
		out = make([]byte, 0, n)
	}
	return AppendEncoded(out, typ, x)
}

// encodeBF16Rows encodes bf16 bits as typ a chunk of whole rows at a time:
// a block never spans two rows (typeFor gives a block type only to rows
// that hold whole blocks), so the bytes are those of encoding it whole.
func encodeBF16Rows(typ TensorType, bits []uint16, rowLen int, importance []float32) ([]byte, error) {
	size, err := typ.RowBytes(len(bits))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, size)
	step := max(1, encodeChunkValues/rowLen) * rowLen
	buf := make([]float32, min(step, len(bits)))
	for lo := 0; lo < len(bits); lo += step {
		chunk := bits[lo:min(lo+step, len(bits))]
		x := buf[:len(chunk)]
		for i, u := range chunk {
			x[i] = tensor.BF16ToF32(u)
		}
		if out, err = encodeRows(out, typ, x, rowLen, importance); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// typeFor picks a tensor's type in a file whose weights are wtype.
func typeFor(shape []int, wtype TensorType) TensorType {
	if len(shape) < 2 {
		return F32
	}
	if v, _, _ := wtype.blockInfo(); shape[len(shape)-1]%v != 0 {
		return F16
	}
	return wtype
}

// orderedNames sorts parameters as llama.cpp's files list them: the
// embedding, the blocks in numeric order, then the final norm and head.
func orderedNames(names []string) []string {
	key := func(n string) (int, string) {
		switch {
		case n == "model.embed_tokens.weight":
			return -1, n
		case strings.HasPrefix(n, "model.layers."):
			var i int
			fmt.Sscanf(n, "model.layers.%d.", &i)
			return i, n
		}
		return math.MaxInt, n
	}
	out := append([]string(nil), names...)
	sort.Slice(out, func(i, j int) bool {
		a, an := key(out[i])
		b, bn := key(out[j])
		if a != b {
			return a < b
		}
		return an < bn
	})
	return out
}

// setHyperparameters writes the {arch}.* keys llama.cpp reads, with the
// types the converter gives them (integers uint32, floats float32).
func setHyperparameters(b *Builder, arch string, c nn.Config) error {
	k := func(s string) string { return arch + "." + s }
	b.Set(k("vocab_size"), uint32(c.VocabSize))
	b.Set(k("context_length"), uint32(c.MaxPositions))
	b.Set(k("embedding_length"), uint32(c.HiddenSize))
	b.Set(k("block_count"), uint32(c.NumLayers))
	b.Set(k("feed_forward_length"), uint32(c.IntermediateSize))
	b.Set(k("attention.head_count"), uint32(c.NumHeads))
	b.Set(k("attention.head_count_kv"), uint32(c.NumKVHeads))
	b.Set(k("attention.layer_norm_rms_epsilon"), float32(c.RMSNormEps))
	b.Set(k("attention.key_length"), uint32(c.HeadDim))
	b.Set(k("attention.value_length"), uint32(c.HeadDim))
	if c.RotaryDim() != c.HeadDim && arch != "phi3" {
		return fmt.Errorf("gguf: partial_rotary_factor %v: llama.cpp's %s rotates whole heads", c.PartialRotary, arch)
	}
	b.Set(k("rope.dimension_count"), uint32(c.RotaryDim()))
	b.Set(k("rope.freq_base"), float32(c.Rope.Theta))
	r := c.Rope
	switch r.Type {
	case "", "default":
	case "linear":
		b.Set(k("rope.scaling.type"), "linear")
		b.Set(k("rope.scaling.factor"), float32(r.Factor))
	case "yarn":
		b.Set(k("rope.scaling.type"), "yarn")
		b.Set(k("rope.scaling.factor"), float32(r.Factor))
		b.Set(k("rope.scaling.original_context_length"), uint32(r.OriginalMaxPositions))
		if r.AttentionFactor != 0 {
			b.Set(k("rope.scaling.yarn_attn_factor"), float32(r.AttentionFactor))
		}
		if r.BetaFast != 0 {
			b.Set(k("rope.scaling.yarn_beta_fast"), float32(r.BetaFast))
		}
		if r.BetaSlow != 0 {
			b.Set(k("rope.scaling.yarn_beta_slow"), float32(r.BetaSlow))
		}
	case "llama3":
		// Carried by the rope_freqs.weight tensor, as the converter does.
	case "dynamic":
		// Dynamic NTK changes nothing within max_position_embeddings; the
		// converter writes no key for it either.
	case "longrope":
		if arch != "phi3" {
			return fmt.Errorf("gguf: rope_type longrope has no llama.cpp equivalent for %s", arch)
		}
		// Keys and factor tensors: setPhi3, addPhi3RopeFactors.
	default:
		return fmt.Errorf("gguf: rope_type %q has no llama.cpp equivalent for %s", r.Type, arch)
	}
	switch arch {
	case "gemma3":
		return setGemma3(b, c)
	case "phi3":
		return setPhi3(b, c)
	}
	if arch == "gemma2" {
		return setGemma2(b, c)
	}
	if arch == "granite" {
		setGranite(b, c)
	}
	return nil
}

// llama3RopeFactors is the per-frequency divisor of Llama 3.1's RoPE
// scaling, as convert_hf_to_gguf.py computes rope_freqs: 1 for short
// wavelengths, factor for long ones, a smooth blend between.
func llama3RopeFactors(c nn.Config) []float32 {
	r := c.Rope
	dim := c.HeadDim
	old := float64(r.OriginalMaxPositions)
	lowWave, highWave := old/r.LowFreqFactor, old/r.HighFreqFactor
	out := make([]float32, dim/2)
	for i := range out {
		freq := 1 / math.Pow(r.Theta, float64(2*i)/float64(dim))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(r.Factor)
		default:
			smooth := (old/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/r.Factor + smooth))
		}
	}
	return out
}

// checkOverrides refuses a type for the head or the embeddings whose
// blocks their rows do not fill (llama-quantize would abort on it). Tied
// embeddings given the head's type are the exception: llama-quantize
// types them through the mix, rows it cannot hold falling back as the
// mix's do (typePlan), and TypeNotes says so.
func checkOverrides(m *nn.Model, opt Options) error {
	c := m.Config
	output := opt.OutputType
	if c.TieEmbeddings {
		output = nil
	}
	for _, o := range []struct {
		typ  *TensorType
		flag string
		rows int
	}{{output, "output", c.HiddenSize}, {opt.EmbeddingType, "embedding", c.HiddenSize}} {
		if o.typ == nil {
			continue
		}
		if _, err := o.typ.RowBytes(o.rows); err != nil {
			return fmt.Errorf("gguf: %s type %s: the %s's rows of %d values are not whole %s blocks; pick a type of 32-value blocks (q8_0, q5_0, q4_0, iq4_nl) or f16", o.flag, *o.typ, o.flag, o.rows, *o.typ)
		}
	}
	return nil
}
