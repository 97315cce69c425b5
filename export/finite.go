package export

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/lora"
)

// ErrNonFinite is wrapped by export errors for a tensor holding NaN or
// Inf: a file with such weights loads everywhere and produces garbage, so
// nothing is written.
var ErrNonFinite = errors.New("non-finite value")

// ErrOutOfRange is wrapped by export errors for a finite value that the
// file's type cannot hold (beyond f16's ±65504, or a block scale that
// f16 cannot store): rounded, it would be written as Inf, so nothing is
// written.
var ErrOutOfRange = errors.New("value out of the type's range")

// CheckFinite returns an error naming the tensor and the first NaN or Inf
// in v, or nil.
func CheckFinite(name string, v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n := 0
			for _, y := range v[i:] {
				if math.IsNaN(float64(y)) || math.IsInf(float64(y), 0) {
					n++
				}
			}
			return fmt.Errorf("export: tensor %q: %w: element %d is %v (%d of %d elements are NaN or Inf); the weights are broken (a diverged training run?), nothing was written",
				name, ErrNonFinite, i, x, n, len(v))
		}
	}
	return nil
}

// CheckAdapterFinite checks every tensor of an adapter, in name order.
// Each is copied out and checked in turn, not all at once.
func CheckAdapterFinite(a *lora.Adapter) error {
	params := a.Params()
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if err := CheckFinite(name, params[name].Value.F32()); err != nil {
			return err
		}
	}
	return nil
}

// PEFT writes an adapter as a PEFT folder (lora.Adapter.Save: also its
// base record) after checking that every tensor is finite. The folder is
// written as merged ones are (writeFolder): it replaces only an earlier
// PEFT export whose files are unchanged (and says so), and with force
// moves any other folder aside, kept.
func PEFT(a *lora.Adapter, dir string, force bool) (notes []string, err error) {
	return PEFTContext(context.Background(), a, dir, force, "")
}

// PEFTContext is PEFT stopped by a cancelled ctx before the next tensor,
// with an error wrapping ctx's and dir left as it was, as MergedHFWith.
//
// chatTemplate, when set, is written beside the adapter as
// chat_template.jinja: the template it was trained with, which ftune.Load
// and the merged and GGUF exports take over the base's (as a TRL output
// folder carries its tokenizer's).
func PEFTContext(ctx context.Context, a *lora.Adapter, dir string, force bool, chatTemplate string) (notes []string, err error) {
	return PEFTWith(ctx, a, dir, PEFTOptions{Force: force, ChatTemplate: chatTemplate})
}

// PEFTOptions control PEFTWith.
type PEFTOptions struct {
	// Force moves aside (kept, not deleted) a folder at dir that is no
	// earlier PEFT export to replace, as MergedOptions.Force.
	Force bool
	// ChatTemplate is PEFTContext's chatTemplate.
	ChatTemplate string
	// From is what the export is made from, recorded (MergedOptions.From).
	From string
}

// PEFTWith is PEFTContext with options.
func PEFTWith(ctx context.Context, a *lora.Adapter, dir string, opt PEFTOptions) (notes []string, err error) {
	if err := CheckAdapterFinite(a); err != nil {
		return nil, err
	}
	return writeFolder(dir, "peft", opt.From, opt.Force, func(tmp string) error {
		if err := a.SaveContext(ctx, tmp); err != nil {
			return err
		}
		if opt.ChatTemplate == "" {
			return nil
		}
		return os.WriteFile(filepath.Join(tmp, chat.TemplateFile), []byte(opt.ChatTemplate), 0o644)
	})
}
