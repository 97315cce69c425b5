package ftune

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ftune/ftune/config"
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
// nil config, when adapter is not in a run folder.
func AdapterRunConfig(adapter string) (cfg *RunConfig, path string, err error) {
	run := runOfAdapter(adapter)
	if run == "" {
		return nil, "", nil
	}
	path = filepath.Join(run, track.ConfigFile)
	if cfg, err = config.Load(path); err != nil {
		return nil, path, fmt.Errorf("the run that trained adapter %s: %w", adapter, err)
	}
	env, err := track.ReadEnv(run)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return cfg, path, nil
	case err != nil:
		return nil, path, fmt.Errorf("the run that trained adapter %s: %w", adapter, err)
	}
	if wd := env.WorkingDir; wd != "" {
		d := &cfg.Data
		d.Root, d.TokenCache = under(wd, d.Root), under(wd, d.TokenCache)
		for i, f := range d.Files {
			d.Files[i] = under(wd, f)
		}
		if config.IsTemplateFile(d.Template) {
			d.Template = under(wd, d.Template)
		}
	}
	return cfg, path, nil
}

// runOfAdapter is the run folder holding adapter (its parent, or an
// ancestor up to a checkpoint's per-subject adapter,
// RUN/checkpoints/step-N/adapters/SUBJECT): the nearest that has a
// config.yaml and is a run folder (track.IsRun); "" when none is.
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
		if track.IsRun(dir) && exists(filepath.Join(dir, track.ConfigFile)) {
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
