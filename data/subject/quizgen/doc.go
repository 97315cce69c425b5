// Package quizgen builds the bundled subject datasets (assets/data/subjects)
// from the BSD quiz(6) data copied to assets/data/quiz: geography
// (capitals), chemistry (elements) and US history (presidents), as
// question/answer chats with varied phrasings and short answers.
//
// Every fact is trained with one phrasing; a tenth of the facts is asked
// again in val and another tenth in test, each with a phrasing train did
// not use for it. Output is a deterministic function of the quiz files and
// the seed; TestBundledFilesAreGenerated keeps the committed files in step.
//
// Regenerate with: go run ./internal/cmd/gen-quiz
package quizgen
