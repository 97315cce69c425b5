//go:build race

package tokenizer

// raceEnabled: the race detector makes regexp2 about 14 times slower.
const raceEnabled = true
