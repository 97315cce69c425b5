package export

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TokenizerFiles are copied from the base folder when present.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"chat_template.jinja", "chat_template.json", "generation_config.json",
	"tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
}

// MaxCopiedFileBytes bounds each file MergedHFWith copies as it is from
// the base folder (TokenizerFiles). Real ones are far smaller:
// tokenizer.model 0.5-4 MB, vocab.json and merges.txt a few MB, the largest
// tokenizer.json (Gemma 3's 262k-token vocabulary) about 33 MB. 256 MiB is
// eight times that, and keeps a hostile or broken folder from filling the
// disk: at most len(TokenizerFiles) × 256 MiB is copied, and that is counted
// in the free-space check before anything is written.
const MaxCopiedFileBytes = 256 << 20

// ErrOutsideBase is wrapped when a file the merged export would copy from
// the base folder is a link that leads out of it (and out of the Hugging
// Face cache's blobs, for a cached snapshot): the export is made to be
// shared, and such a link in a downloaded folder could carry any file of the
// user's into it.
var ErrOutsideBase = errors.New("a link out of the base model's folder")

// copyChunk is what copyBaseFile writes between two looks at the context:
// a cancelled export stops within about a millisecond of copying.
const copyChunk = 1 << 20

// checkRoom is fsutil.CheckRoom; tests replace it to see what is asked.
var checkRoom = fsutil.CheckRoom

// Result says what an export did beyond the obvious.
type Result struct {
	// DType is the dtype config.json now names ("bfloat16", ...).
	DType string
	// Files written into the output folder, sorted.
	Files []string
	// Notes are things the user should know (an NF4 base dequantized, a
	// quantization_config dropped); each is one sentence.
	Notes []string
}

// MergedHF writes a Hugging Face model folder with the adapter merged in:
// config.json from baseDir (its dtype and torch_dtype set to the base's
// weight dtype, any quantization_config removed), the tokenizer files that
// baseDir has, and the weights as safetensors, each tensor in the dtype the
// base file stores it in (bf16 rounded to nearest even from the float32
// sum W + s·B·A), sharded with model.safetensors.index.json when they pass
// maxShardBytes (<= 0: one file). m is not modified; a nil adapter exports
// the base as it is. See MergedHFWith for the notes (an NF4 base is
// dequantized first; the notes say so), cancelling and the output folder's
// rules. Each tensor is merged and encoded as it is written: beyond the
// model, the export holds one tensor in memory (as float32 and encoded).
func MergedHF(m *nn.Model, a *lora.Adapter, baseDir, outDir string, maxShardBytes int64) error {
	_, err := MergedHFWith(context.Background(), m, a, baseDir, outDir, MergedOptions{MaxShardBytes: maxShardBytes})
	return err
}

// MergedOptions control MergedHFWith.
type MergedOptions struct {
	MaxShardBytes int64 // <= 0: one file
	// Force replaces an output folder that is no earlier merged export
	// to replace (one holding files ftune did not write, an export of
	// another format, files changed since ftune wrote them); that folder
	// is moved aside (outDir.replaced-<time>, named in the notes), never
	// deleted.
	Force bool
	// From is what the export is made from (the adapter folder, as the
	// user named it), recorded in ManifestFile and named in the note of a
	// later export that replaces this one; "" records nothing.
	From string
	// ChatTemplate, when set, is written as chat_template.jinja in place
	// of the base's: the template the adapter was trained with, which
	// transformers (4.47 on) reads over tokenizer_config.json's; that
	// file's chat_template is set to it too (writeTokenizerConfig).
	ChatTemplate string
}

// MergedHFWith is MergedHF with options, returning what it did.
//
// The folder is written under a temporary name beside outDir, with a
// ManifestFile recording what ftune wrote (each file's SHA-256), and
// swapped into place (an atomic exchange on Linux and macOS), so outDir is
// either the previous folder or the complete export. An existing outDir is
// deleted only when it is an earlier merged export whose record accounts
// for every file in it, unchanged (the notes say what it was); a folder
// holding anything else (ErrNotOurs), an export of another format
// (ErrOtherKind) or files changed since (ErrEdited) is refused, or with
// Force moved aside and kept. Every tensor is checked to be finite as it is written: a NaN or Inf
// ends the export with ErrNonFinite naming the tensor, and outDir is left
// as it was. A cancelled ctx stops it before the next tensor, or within a
// chunk of the file it is copying, the same way.
//
// The files taken from baseDir (config.json and the TokenizerFiles it has)
// must be regular files once their links are followed, of at most
// MaxCopiedFileBytes (config.json: nn.MaxConfigBytes), lying inside baseDir
// or, for a Hugging Face cache snapshot (<repo>/snapshots/<revision>, whose
// files are links to ../../blobs), inside <repo>/blobs. Anything else (a
// named pipe, a device such as a link to /dev/zero, a link leading elsewhere:
// ErrOutsideBase) is refused before anything is written.
func MergedHFWith(ctx context.Context, m *nn.Model, a *lora.Adapter, baseDir, outDir string, opt MergedOptions) (*Result, error) {
	outDir = filepath.Clean(outDir) // "out/" is the folder out, beside which its temporaries go
	src, err := NewSource(m, a)
	if err != nil {
		return nil, err
	}
	if sameDir(baseDir, outDir) {
		return nil, fmt.Errorf("export: the output folder %s is the base model's folder; write the merged model elsewhere", outDir)
	}
	if err := checkReplaceable(outDir, "merged", opt.Force); err != nil {
		return nil, err // before the work, not only once the folder is written
	}
	baseTypes, dominant, err := baseDTypes(baseDir)
	if err != nil {
		return nil, err
	}
	res := &Result{DType: torchName(dominant)}
	if src.HasNF4() {
		res.Notes = append(res.Notes, fmt.Sprintf("the base weights are NF4 in memory: they were dequantized to float32 before merging and are written as %s; the quantization error of NF4 stays in them", res.DType))
	}
	var size int64
	for _, name := range src.Names() {
		dt, ok := baseTypes[name]
		if !ok {
			dt = dominant
		}
		size += int64(tensor.Shape(src.Shape(name)).Numel()) * int64(dt.Size())
	}
	// Every file taken from the base folder is opened and checked now:
	// a refusal comes before anything is written, and the copies count in
	// the free-space check.
	files, err := openBaseFiles(baseDir)
	if err != nil {
		return nil, err
	}
	defer files.close()
	size += files.bytes() + int64(len(opt.ChatTemplate))
	// What killed exports of outDir left goes first: it may be what fills
	// the disk.
	cleared, err := clearLeftovers(outDir)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, cleared...)
	if err := checkRoom(outDir, size); err != nil {
		if len(cleared) > 0 {
			err = fmt.Errorf("%w (%s)", err, strings.Join(cleared, "; "))
		}
		return nil, fmt.Errorf("export: %w", err) // before minutes of writing
	}
	notes, err := fillFolder(outDir, "merged", opt.From, opt.Force, func(tmp string) error {
		note, err := writeConfig(files.config, files.configPath, tmp, res.DType, src.Untied())
		if err != nil {
			return err
		}
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
		if src.Untied() {
			res.Notes = append(res.Notes, "the adapter trained its own copy of the embeddings or the LM head (modules_to_save), which the base ties together: the merged model holds both (lm_head.weight written, tie_word_embeddings: false), as PEFT's merge_and_unload leaves them")
		}
		for _, f := range files.copies {
			if opt.ChatTemplate != "" && f.name == chat.TemplateFile {
				continue
			}
			if opt.ChatTemplate != "" && f.name == "tokenizer_config.json" {
				note, err := writeTokenizerConfig(f, tmp, opt.ChatTemplate)
				if err != nil {
					return err
				}
				if note != "" {
					res.Notes = append(res.Notes, note)
				}
				continue
			}
			if err := copyBaseFile(ctx, f, tmp); err != nil {
				return err
			}
		}
		if opt.ChatTemplate != "" {
			if err := os.WriteFile(filepath.Join(tmp, chat.TemplateFile), []byte(opt.ChatTemplate), 0o644); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		// Each tensor is merged and encoded when the writer reaches it:
		// the output's weights are never all in memory at once.
		var tensors []safetensors.Tensor
		var fillErr error // a Fill's own error, returned as it is
		for _, name := range src.Names() {
			dt, ok := baseTypes[name]
			if !ok {
				dt = dominant
			}
			fill := func() ([]byte, error) {
				if err := ctx.Err(); err != nil {
					fillErr = fmt.Errorf("export: stopped before %s: %w", name, err)
					return nil, fillErr
				}
				if dt == safetensors.BF16 {
					if data, ok := src.BF16Bytes(name); ok {
						return data, nil
					}
				}
				f, err := src.Float32(name)
				if err != nil {
					fillErr = err
					return nil, err
				}
				data, err := encodeFloats(f, dt)
				if err != nil {
					fillErr = fmt.Errorf("export: %s: %w", name, err)
					return nil, fillErr
				}
				return data, nil
			}
			tensors = append(tensors, safetensors.Tensor{Name: name, DType: dt, Shape: src.Shape(name), Fill: fill})
		}
		if err := safetensors.WriteSharded(tmp, "model", tensors, opt.MaxShardBytes, map[string]string{"format": "pt"}); err != nil {
			if fillErr != nil {
				return fillErr // not the temporary file's path it was writing
			}
			return fmt.Errorf("export: %w", err)
		}
		return nil
	})
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(outDir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, e := range ents {
		res.Files = append(res.Files, e.Name())
	}
	sort.Strings(res.Files)
	return res, nil
}

// baseDTypes reads the dtype of every tensor in the base folder's
// safetensors and the most common float dtype among them (ties: the wider
// loses, so a bf16 model with float32 norms counts as bf16).
func baseDTypes(dir string) (map[string]safetensors.DType, safetensors.DType, error) {
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, "", fmt.Errorf("export: base %s: %w", dir, err)
	}
	defer set.Close()
	types := map[string]safetensors.DType{}
	bytes := map[safetensors.DType]int64{}
	for _, name := range set.Names() {
		t, err := set.Tensor(name)
		if err != nil {
			return nil, "", fmt.Errorf("export: base %s: %w", dir, err)
		}
		switch t.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
			types[name] = t.DType
			bytes[t.DType] += int64(len(t.Data))
		}
	}
	dominant := safetensors.F32
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16} {
		if bytes[dt] > 0 && bytes[dt] >= bytes[dominant] {
			dominant = dt
		}
	}
	return types, dominant, nil
}

func torchName(dt safetensors.DType) string {
	switch dt {
	case safetensors.BF16:
		return "bfloat16"
	case safetensors.F16:
		return "float16"
	}
	return "float32"
}

// encodeFloats rounds float32 values to dt (round to nearest even for bf16
// and f16, as torch's .to() does) as little-endian bytes.
func encodeFloats(f []float32, dt safetensors.DType) ([]byte, error) {
	switch dt {
	case safetensors.F32:
		out := make([]byte, 4*len(f))
		for i, v := range f {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	case safetensors.BF16, safetensors.F16:
		conv, inf, largest := tensor.F32ToBF16, uint16(0x7f80), tensor.BF16ToF32(0x7f7f)
		if dt == safetensors.F16 {
			conv, inf, largest = tensor.F32ToF16, 0x7c00, 65504
		}
		out := make([]byte, 2*len(f))
		for i, v := range f {
			h := conv(v)
			if h&inf == inf {
				// A finite sum beyond the dtype's range (f16's ±65504: a
				// large adapter update) rounds to Inf, which transformers
				// would load and turn into non-finite logits.
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("value %d is %v: %w", i, v, ErrNonFinite)
				}
				return nil, fmt.Errorf("value %d is %v, beyond what %s can hold (its largest is %v): %w; it would be written as Inf, and nothing was written: the merged model keeps the base's dtype, so merge onto a bf16 or float32 copy of the base, or export --format gguf with --quant bf16 or f32",
					i, v, dt, largest, ErrOutOfRange)
			}
			binary.LittleEndian.PutUint16(out[2*i:], h)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot write dtype %s (F32, F16 or BF16)", dt)
}

// writeConfig writes the base's config.json (raw, read from path) with the
// dtype keys set; it returns a note when it had to drop a
// quantization_config.
func writeConfig(raw []byte, path, outDir, dtype string, untie bool) (string, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("export: %s: expected a JSON object: %w", path, err)
	}
	q, _ := json.Marshal(dtype)
	// transformers v5 reads "dtype", v4 "torch_dtype": write both so either loads it.
	cfg["dtype"] = q
	cfg["torch_dtype"] = q
	if untie {
		cfg["tie_word_embeddings"] = json.RawMessage("false")
	}
	note := ""
	if _, ok := cfg["quantization_config"]; ok {
		delete(cfg, "quantization_config")
		note = "config.json's quantization_config was removed: the merged weights are written unquantized"
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("export: config.json: %w", err)
	}
	return note, os.WriteFile(filepath.Join(outDir, "config.json"), append(out, '\n'), 0o644)
}

// baseFiles are the files MergedHFWith takes from the base folder, opened
// and checked by openBaseFiles before anything is written.
type baseFiles struct {
	configPath string
	config     []byte     // config.json's content
	copies     []baseFile // the TokenizerFiles the folder has, in that order
}

// baseFile is one file copied as it is.
type baseFile struct {
	name string // in the base folder and in the export
	path string // in the base folder
	f    *os.File
	size int64 // when opened
}

// openBaseFiles reads the base folder's config.json and opens the
// TokenizerFiles it has, each checked by openBaseFile; close releases them.
func openBaseFiles(baseDir string) (*baseFiles, error) {
	roots, err := baseRoots(baseDir)
	if err != nil {
		return nil, err
	}
	files := &baseFiles{configPath: filepath.Join(baseDir, "config.json")}
	opened := false
	defer func() {
		if !opened {
			files.close()
		}
	}()
	f, _, err := openBaseFile(roots, files.configPath, nn.MaxConfigBytes)
	if err == nil && f == nil {
		err = fmt.Errorf("export: base %s has no config.json: %w", baseDir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	files.config, err = io.ReadAll(io.LimitReader(f, nn.MaxConfigBytes+1))
	f.Close()
	if err == nil && int64(len(files.config)) > nn.MaxConfigBytes {
		err = &fsutil.TooLargeError{Path: files.configPath, Size: -1, Limit: nn.MaxConfigBytes}
	}
	if err != nil {
		return nil, fmt.Errorf("export: read %s: %w", files.configPath, err)
	}
	for _, name := range TokenizerFiles {
		path := filepath.Join(baseDir, name)
		f, info, err := openBaseFile(roots, path, MaxCopiedFileBytes)
		if err != nil {
			return nil, err
		}
		if f != nil {
			files.copies = append(files.copies, baseFile{name: name, path: path, f: f, size: info.Size()})
		}
	}
	opened = true
	return files, nil
}

// bytes is about what the export writes besides the weights.
func (b *baseFiles) bytes() int64 {
	n := int64(len(b.config))
	for _, f := range b.copies {
		n += f.size
	}
	return n
}

func (b *baseFiles) close() {
	for _, f := range b.copies {
		f.f.Close()
	}
}

// baseRoots are the folders from which the export copies files of baseDir,
// their links followed: baseDir itself and, when it is a snapshot in a
// Hugging Face cache (<repo>/snapshots/<revision>), <repo>/blobs, where the
// cache's links lead (../../blobs/<hash>). A folder the user assembled from
// links to files elsewhere is refused; copying the files in fixes it.
func baseRoots(baseDir string) ([]string, error) {
	dir, err := filepath.EvalSymlinks(baseDir)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("export: base %s: %w", baseDir, err)
	}
	roots := []string{dir}
	if snapshots := filepath.Dir(dir); filepath.Base(snapshots) == "snapshots" {
		roots = append(roots, filepath.Join(filepath.Dir(snapshots), "blobs"))
	}
	return roots, nil
}

// openBaseFile opens a file the export takes from the base folder and
// refuses it unless it is a regular file (fsutil.OpenRegular: a named pipe
// or a device is refused without blocking) of at most limit bytes that lies
// under one of roots once its links are followed (ErrOutsideBase). A file
// the folder does not have gives a nil file and no error; a link to
// nothing is an error, as it is a file the model meant to have.
func openBaseFile(roots []string, path string, limit int64) (*os.File, fs.FileInfo, error) {
	f, info, err := fsutil.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		if target, lerr := os.Readlink(path); lerr == nil {
			return nil, nil, fmt.Errorf("export: %s is a link to %s, which does not exist", path, target)
		}
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	fail := func(err error) (*os.File, fs.FileInfo, error) {
		f.Close()
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return fail(err)
	}
	inside := false
	for _, r := range roots {
		if rel, err := filepath.Rel(r, resolved); err == nil && filepath.IsLocal(rel) {
			inside = true
		}
	}
	if !inside {
		return fail(fmt.Errorf("%s is a link to %s: %w; copy the file into the folder if it belongs to the model", path, resolved, ErrOutsideBase))
	}
	// The name was resolved after the open: the file opened must be the
	// one the name leads to, or a link was changed in between.
	if now, err := os.Stat(resolved); err != nil || !os.SameFile(info, now) {
		return fail(fmt.Errorf("%s changed while it was opened", path))
	}
	if info.Size() > limit {
		return fail(&fsutil.TooLargeError{Path: path, Size: info.Size(), Limit: limit})
	}
	return f, info, nil
}

// copyBaseFile copies a file opened by openBaseFile into dir, a chunk at a
// time with a look at ctx before each, so that a cancelled export stops
// within a chunk (and its temporary folder is removed). A file that grew
// past MaxCopiedFileBytes since it was checked is refused.
func copyBaseFile(ctx context.Context, in baseFile, dir string) error {
	out, err := os.OpenFile(filepath.Join(dir, in.name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer out.Close() // after a failure; the caller removes the folder
	// Most of these files are kilobytes: no need for a whole chunk.
	buf := make([]byte, min(in.size+1, copyChunk))
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("export: stopped while copying %s: %w", in.path, err)
		}
		k, rerr := in.f.Read(buf)
		if n += int64(k); n > MaxCopiedFileBytes {
			return fmt.Errorf("export: %w", &fsutil.TooLargeError{Path: in.path, Size: -1, Limit: MaxCopiedFileBytes})
		}
		if _, err := out.Write(buf[:k]); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("export: copy %s: %w", in.path, rerr)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// sameDir reports whether two paths name the same folder (after resolving
// links); a path that does not exist yet is compared as written, absolute.
func sameDir(a, b string) bool {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return filepath.Clean(p)
	}
	return resolve(a) == resolve(b)
}
