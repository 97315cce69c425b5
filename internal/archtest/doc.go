// Package archtest holds tests that enforce the architecture of DESIGN.md
// over the whole module: today, that imports point down the layer stack
// (see layers_test.go). It has no code of its own.
package archtest
