package ftune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/track"
)

// TinyBase names the small model embedded in ftune (for tests, examples
// and the default `ftune train`).
const TinyBase = assets.TinyBase

// Message is one turn of a conversation (role "system", "user",
// "assistant", or "tool" for a tool's result).
type Message = chat.Message

// Model is a loaded base model with its tokenizer and chat template, and
// the adapter applied to it, if any.
//
// Generate, Chat and the Sends of Conversations may run from many
// goroutines at once on one Model: they read it and change nothing of it
// (each reply has its own KV cache and sampling stream; see Conversation
// for one conversation shared between goroutines). ImportanceMatrix, which
// routes the linears through recorders for its run, must not run beside
// them, nor must anything that changes the fields below or what they point
// to (Net's weights, adapters, Config or hooks such as EmbeddingHook,
// Tokenizer, Template, Adapter; lora.Adapter.Attach changes Net):
// set those up before sharing the Model.
//
// A Model holds no open file or mapping once Load returns (the weights
// are read and the files closed), and has no Close: drop every
// reference to it to free it. Its memory, a GPU's included (tensor
// storage is freed by runtime cleanups), is returned as the collector
// finds it unreachable, not at once; a program swapping large models on
// one GPU may call runtime.GC between them. A nil or zero Model's
// methods return an error matching ErrNotLoaded.
type Model struct {
	Dir       string // the base's folder
	Net       *nn.Model
	Tokenizer *tokenizer.Tokenizer
	Template  *chat.Template
	Adapter   *lora.Adapter // nil without one
	stops     []int
}

// LoadOptions control Load.
type LoadOptions struct {
	// Adapter is a PEFT adapter folder to apply. The base it records is
	// loaded when Load's model is ""; otherwise model must be that base
	// (same content hash), for instance after the base folder moved.
	Adapter string
	// Device runs the model: "cpu", "cuda" or "cuda:N", or "auto" (a
	// GPU when one is usable, else the CPU, saying why), as
	// training.device names them (recipe.OpenDevice). "" is the CPU: the
	// zero options do not take a GPU unasked.
	Device string
	// Precision is "auto" or "" (bf16 on a GPU: weights, activations and
	// KV cache in bf16, products on tensor cores; float32 on the CPU),
	// "bf16" (on the CPU too: bf16 products where it has the
	// instructions, else refused) or "f32" (float32 everywhere), as
	// training.precision.
	Precision string
	// Log receives one line per choice made for the caller: the device
	// and precision when Device or Precision is set (and why auto fell
	// back to the CPU), which base an adapter was matched to, the
	// family's built-in template used for a model without a chat
	// template. nil discards them.
	Log io.Writer
}

// Load reads a model: "tiny-base" or a Hugging Face folder; "" means the
// adapter's base (LoadOptions.Adapter), else tiny-base. A Device or
// Precision that names none matches ErrInvalidInput; a GPU named that
// does not open is an error saying why (auto uses the CPU instead, and
// says so on Log). LoadContext is the same with a ctx that stops it.
func Load(model string, opt LoadOptions) (*Model, error) {
	return LoadContext(context.Background(), model, opt)
}

// LoadContext is Load that a cancelled ctx stops, between its stages
// (finding and hashing the base, opening the device, the tokenizer, the
// template, the adapter) and between the weights' tensors, with an error
// wrapping ctx.Err(): a service can give up on a model that loads for
// minutes.
func LoadContext(ctx context.Context, model string, opt LoadOptions) (*Model, error) {
	if err := checkCtx("load", ctx); err != nil {
		return nil, err
	}
	stop := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("load %s: stopped: %w", model, err)
		}
		return nil
	}
	if err := stop(); err != nil {
		return nil, err
	}
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	if err := checkDevice(opt); err != nil {
		return nil, err
	}
	dir, err := resolveModel(model, opt.Adapter, log)
	if err != nil {
		return nil, err
	}
	// Before the base loads (seconds to minutes): an adapter its run
	// no longer vouches for is refused at once.
	if opt.Adapter != "" {
		if err := track.CheckAdapter(opt.Adapter); err != nil {
			return nil, err
		}
	}
	if err := stop(); err != nil {
		return nil, err
	}
	lo, err := loadDevice(opt, log)
	if err != nil {
		return nil, err
	}
	if err := stop(); err != nil {
		return nil, err
	}
	net, err := nn.LoadContext(ctx, dir, lo)
	if err != nil {
		return nil, err
	}
	if err := stop(); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	tmpl, err := chat.Load(dir)
	if errors.Is(err, chat.ErrNoTemplate) {
		var name string
		if tmpl, name, err = chat.DefaultFor(tok); err == nil {
			fmt.Fprintf(log, "note: %s has no chat template; using the built-in %s\n", dir, name)
		}
	}
	if err != nil {
		return nil, err
	}
	if opt.Adapter != "" {
		if tmpl, err = adapterTemplate(tmpl, opt.Adapter, log); err != nil {
			return nil, err
		}
	}
	if err := stop(); err != nil {
		return nil, err
	}
	m := &Model{Dir: dir, Net: net, Tokenizer: tok, Template: tmpl}
	m.stops = net.StopTokens(tok)
	if opt.Adapter != "" {
		// On net's backend, in its master dtype, as training's init_from
		// loads one.
		if m.Adapter, err = lora.Load(net, opt.Adapter, "default"); err != nil {
			return nil, err
		}
		if m.Adapter.Base.IsZero() {
			// A PEFT adapter without ftune's record: from now on it
			// belongs to the base it was loaded on (exports record it).
			m.Adapter.Base = lora.BaseOf(net)
		}
		if err := m.Adapter.Attach(net); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkDevice refuses a misspelt device or precision, before any work:
// the caller's mistake (ErrInvalidInput), where a GPU that does not open
// is not.
func checkDevice(opt LoadOptions) error {
	if err := recipe.CheckDevice(opt.Device); err != nil {
		return invalidf("device %w", err)
	}
	if err := recipe.CheckPrecision(opt.Precision); err != nil {
		return invalidf("precision %w", err)
	}
	return nil
}

// loadDevice opens the device opt asks for, through recipe as training
// does, and says which on log; it returns the model's load options there:
// on a GPU's bf16 path the weights and activations in bf16
// (recipe.Device.ModelDType), as training computes them.
func loadDevice(opt LoadOptions, log io.Writer) (nn.LoadOptions, error) {
	lo := nn.LoadOptions{KeepBF16: true}
	if opt.Device == "" && opt.Precision == "" {
		return lo, nil // the zero options: the CPU, nothing said
	}
	device := opt.Device
	if device == "" {
		device = "cpu" // Precision alone: "" is the CPU here, not auto
	}
	d, err := recipe.OpenDeviceFor(recipe.DeviceRequest{Device: device, Precision: opt.Precision, Log: log})
	if err != nil {
		return lo, err
	}
	fmt.Fprintln(log, d.Describe())
	lo.Backend, lo.DType = d.Backend, d.ModelDType()
	return lo, nil
}

// adapterTemplate is the chat template an adapter folder carries
// (chat_template.jinja: the one it was trained with, which ftune's runs
// write beside every adapter, as a TRL output folder carries its
// tokenizer's), compiled with base's special tokens; base when the folder
// has none or the same.
func adapterTemplate(base *chat.Template, adapterDir string, log io.Writer) (*chat.Template, error) {
	path := filepath.Join(adapterDir, chat.TemplateFile)
	src, err := fsutil.ReadFileLimit(path, chat.MaxTemplateBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return base, nil
	}
	if err != nil {
		return nil, err
	}
	if string(src) == base.Source() {
		return base, nil
	}
	t, err := base.WithSource(path, string(src))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "note: chat template: the adapter's %s, which it was trained with, not the base's %s\n", path, base.Name())
	return t, nil
}

// StopTokens returns the ids that end a raw-text reply (Generate):
// config.json's and generation_config.json's EOS ids, the tokenizer's,
// and ChatML's <|im_end|>. Chat and Conversation stop on the chat
// template's end-of-turn token too (chat.Template.EndOfTurn).
func (m *Model) StopTokens() []int {
	if m == nil {
		return nil
	}
	return append([]int(nil), m.stops...)
}

func resolveModel(model, adapter string, log io.Writer) (string, error) {
	if adapter == "" {
		return recipe.ResolveModel(model)
	}
	dir, note, err := ResolveBase(adapter, model)
	if err != nil {
		return "", err
	}
	if note != "" {
		fmt.Fprintln(log, "note:", note)
	}
	return dir, nil
}

// ErrBaseNotFound is wrapped when the base an adapter was trained on is
// not where it was and no model was given.
var ErrBaseNotFound = errors.New("the adapter's base model is not found")

// ResolveBase finds the folder of the base an adapter folder was trained
// on. model, when set, is that base ("tiny-base" or a folder, e.g. after
// it moved) and must have the hash the adapter records. Otherwise the
// recorded path is used, then the embedded tiny-base, whichever has the
// recorded hash. An adapter without ftune's record (from PEFT) is
// matched through base_model_name_or_path when that is a folder here. A
// folder of per-subject adapters is resolved through its first adapter.
// note says what was chosen when it was not the obvious (empty otherwise).
func ResolveBase(adapter, model string) (dir, note string, err error) {
	if err := track.NotARunFolder(adapter); err != nil {
		return "", "", err
	}
	adapter, err = firstAdapter(adapter)
	if err != nil {
		return "", "", err
	}
	base, recorded, err := lora.ReadBase(adapter)
	if err != nil {
		return "", "", err
	}
	if model != "" {
		if dir, err = recipe.ResolveModel(model); err != nil {
			return "", "", err
		}
		if recorded {
			if err := sameBase(base, dir); err != nil {
				return "", "", fmt.Errorf("adapter %s: model %s: %w", adapter, model, err)
			}
		}
		return dir, "", nil
	}
	if !recorded {
		return pathFromPEFT(adapter)
	}
	at := base.CheckPath() // nil: a model folder is there
	if at == nil {
		if err := sameBase(base, base.Path); err != nil {
			return "", "", fmt.Errorf("adapter %s: the base at %s changed since training: %w; give the original base as the model (Load's model, EvaluateOptions.Model, the command's --model)", adapter, base.Path, err)
		}
		return base.Path, "", nil
	}
	if tiny, err := assets.Model(TinyBase); err == nil && sameBase(base, tiny) == nil {
		return tiny, "", nil
	}
	return "", "", fmt.Errorf("adapter %s: %w: it was trained on %q (sha256 %.12s), and %w; give that base's folder as the model (Load's model, EvaluateOptions.Model, the command's --model)",
		adapter, ErrBaseNotFound, base.Name, base.Hash, at)
}

// sameBase checks dir's content hash against the record.
func sameBase(b lora.Base, dir string) error {
	if b.Hash == "" || b.Scheme != nn.FingerprintScheme {
		return nil // nothing to compare with (another hash scheme)
	}
	h, err := nn.Fingerprint(dir)
	if err != nil {
		return err
	}
	if h != b.Hash {
		return fmt.Errorf("%w: %s has sha256 %.12s, the adapter was trained on %q (sha256 %.12s)", lora.ErrBaseMismatch, dir, h, b.Name, b.Hash)
	}
	return nil
}

// pathFromPEFT uses base_model_name_or_path of an adapter that has no
// ftune record, when it names a folder here.
func pathFromPEFT(adapter string) (string, string, error) {
	c, err := lora.ReadConfig(filepath.Join(adapter, lora.ConfigFile))
	if err != nil {
		return "", "", err
	}
	p := c.BaseModelNameOrPath
	if p != "" && nn.Exists(p) {
		return p, fmt.Sprintf("adapter %s records no base hash; using base_model_name_or_path %s", adapter, p), nil
	}
	return "", "", fmt.Errorf("adapter %s: %w: it records no base ftune can find (base_model_name_or_path %q); give the base's folder as the model (Load's model, EvaluateOptions.Model, the command's --model)",
		adapter, ErrBaseNotFound, p)
}

// firstAdapter returns dir when it is an adapter folder, else its first
// subfolder that is one (per-subject adapters).
func firstAdapter(dir string) (string, error) {
	if exists(filepath.Join(dir, lora.ConfigFile)) {
		return dir, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("adapter: %w", err)
	}
	for _, e := range ents {
		sub := filepath.Join(dir, e.Name())
		if e.IsDir() && exists(filepath.Join(sub, lora.ConfigFile)) {
			return sub, nil
		}
	}
	return "", fmt.Errorf("adapter %s: no %s in it or in its subfolders", dir, lora.ConfigFile)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return p != "" && err == nil
}
