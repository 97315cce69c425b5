//go:build race

package prep_test

// raceEnabled: the race detector makes tokenising about ten times slower.
const raceEnabled = true
