package ftune

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/track"
)

// AdapterRunConfig is the configuration of the training run that wrote
// adapter, when adapter is one of a run folder's outputs (RUN/adapter,
// RUN/adapters and its per-subject folders, an adapter in a checkpoint
// under RUN/checkpoints): RUN/config.yaml, with its relative data paths
// (data.root, data.files, data.token_cache, a data.template file) joined
// to the folder the run started in (env.json's working_dir; as they are
// for runs that did not record it). Evaluating the adapter with it reads the run's data and
// holds out the rows the run held out (data.val_split and data.seed),
// which defaults would not: they hold out other rows, some of which the
// adapter was trained on. path is the config.yaml read; it is "", with a
// nil config, when adapter is not in a run folder. A data.template file
// is the copy the adapter carries (chat_template.jinja), when it does.
//
// A run folder without its config.yaml is an error wrapping
// ErrRunConfigMissing, path the file missing: the defaults would read
// other data, or hold out other rows, without a word.
func AdapterRunConfig(adapter string) (cfg *RunConfig, path string, err error) {
	run := runOfAdapter(adapter)
	if run == "" {
		return nil, "", nil
	}
	path = filepath.Join(run, track.ConfigFile)
	if !exists(path) {
		return nil, path, fmt.Errorf("adapter %s: %s is missing (%w): the data it was trained on and the rows it held out are not known", adapter, path, ErrRunConfigMissing)
	}
	if cfg, err = LoadRunConfig(run); err != nil {
		return nil, path, fmt.Errorf("the run that trained adapter %s: %w", adapter, err)
	}
	// A data.template file may have been edited or removed since: the
	// copy the adapter carries is the one it was trained with.
	if config.IsTemplateFile(cfg.Data.Template) {
		own := filepath.Join(adapter, chat.TemplateFile)
		if info, err := os.Stat(own); err == nil && info.Mode().IsRegular() {
			cfg.Data.Template = own
		}
	}
	return cfg, path, nil
}

// LoadRunConfig reads the config.yaml of the run folder run, with its
// relative paths taken from the folder the run started in (inRunDir), as
// a resume or an evaluation from any folder must read them.
func LoadRunConfig(run string) (*RunConfig, error) {
	cfg, err := config.LoadRecord(filepath.Join(run, track.ConfigFile))
	if err != nil {
		return nil, err
	}
	return cfg, inRunDir(cfg, run)
}

// inRunDir joins cfg's relative paths (model.path when a folder, data.root,
// data.files, data.token_cache, a data.template file,
// training.lora.init_from) to the folder the run in dir started in
// (env.json's working_dir), where they were relative to: read from
// another folder, "big.jsonl" named another file, or none (a run that did
// not record it keeps them as they are). Absolute paths are left alone,
// so it may run twice.
func inRunDir(cfg *RunConfig, dir string) error {
	env, err := track.ReadEnv(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	wd := env.WorkingDir
	if wd == "" {
		return nil
	}
	d := &cfg.Data
	d.Root, d.TokenCache = under(wd, d.Root), under(wd, d.TokenCache)
	for i, f := range d.Files {
		d.Files[i] = under(wd, f)
	}
	if config.IsTemplateFile(d.Template) {
		d.Template = under(wd, d.Template)
	}
	if m := cfg.Model.Path; m != "" && m != assets.TinyBase {
		cfg.Model.Path = under(wd, m)
	}
	cfg.Training.LoRA.InitFrom = under(wd, cfg.Training.LoRA.InitFrom)
	return nil
}

// ErrRunConfigMissing is wrapped by AdapterRunConfig's error when the
// adapter's run folder has no config.yaml.
var ErrRunConfigMissing = errors.New("the config of the run that trained it")

// runOfAdapter is the run folder holding adapter (its parent, or an
// ancestor up to a checkpoint's per-subject adapter,
// RUN/checkpoints/step-N/adapters/SUBJECT): the nearest that is a run
// folder (track.IsRun), with its config.yaml or not; "" when none is.
func runOfAdapter(adapter string) string {
	dir, err := filepath.Abs(adapter)
	if err != nil {
		return ""
	}
	for range 4 {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
		if track.IsRun(dir) {
			return dir
		}
	}
	return ""
}

// under joins a relative path to dir; "" and absolute paths stay.
func under(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}
