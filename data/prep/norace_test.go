//go:build !race

package prep_test

const raceEnabled = false
