// Package config reads ftune's run file: one YAML document with model,
// data and training sections, decoded onto Default() into typed structs.
//
// Reading is strict because a typo in a training config otherwise costs a
// whole run: an unknown key is an error naming file:line and proposing the
// key meant (by edit distance, and from the names transformers, PEFT and
// Axolotl use, so learning_rate proposes lr). Values are then range- and
// combination-checked by Validate, again with file:line, or with the
// --set argument a value came from.
//
// The usual sequence, which Resolve performs:
//
//	cfg, err := config.Load("run.yaml")   // or config.Default()
//	err = config.Apply(cfg, sets)         // --set training.optimizer.lr=2e-4
//	err = cfg.Validate()
//	yml, err := config.Resolved(cfg)      // the run folder's config.yaml
//
// WriteInit writes the commented file `ftune init` prints, every default
// included; it reads back to Default(). Environment variables ($HOME,
// ${DATA}) expand in path fields: model.path, data.root, data.files,
// data.template and training.tracking.output_dir.
package config
