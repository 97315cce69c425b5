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
// included; it reads back to Default(). In path fields (model.path,
// data.root, data.files, data.template, data.token_cache,
// training.lora.init_from, training.tracking.output_dir) a leading ~ or
// ~/ is the home directory and environment variables ($HOME, ${DATA})
// expand (ExpandPath); ~user is refused.
//
// Convert reads another trainer's flat config (Axolotl's, LLaMA-Factory's,
// transformers') with the same knowledge of their key names, and
// Conversion.Write writes `ftune init`'s file holding the converted values
// (`ftune init --from`): a converted key's line is marked with where it
// came from, and Parse counts the marked values as the user's (Chose).
//
// Anchors, aliases and YAML merge keys work inside the schema
// (`<<: *base` adds the keys of base that the section does not set
// itself; the merged keys are checked like written ones). A block kept
// only for its anchor goes under a top-level key starting with x-
// (x-base: &base {...}), which is otherwise ignored, as in docker compose.
package config
