// Package subject manages one dataset per subject (SubjectDatasetManager).
//
// A data root holds one folder per subject:
//
//	root/
//	  geography/
//	    subject.yaml   description, template, weight, system, shape, columns
//	    train.jsonl    any format data/format reads: .jsonl .json .csv .tsv
//	    val.jsonl      .txt .parquet; "validation" and "dev" also name val
//	    test.jsonl
//	  chemistry/
//	    ...
//
// A run's data root may also hold data files beside the folders, each the
// subject named after it (recipe reads those as it reads data.files); Open
// finds the folders only, so that a folder of data files given as
// data.files stays one subject.
//
// Open discovers the subjects (sorted by name; the index is the subject id
// carried by every row), Validate reports examples, tokens, truncated and
// dropped counts per split and duplicates within and across splits, and
// Mix / MixPlan combine subjects by concatenation, by weights or by
// temperature sampling, deterministically from a seed.
//
// The bundled quiz subjects under assets/data/subjects are made by
// subject/quizgen (go run ./internal/cmd/gen-quiz).
package subject
