// Package parity holds ftune's end-to-end parity tests against golden
// outputs of Hugging Face transformers and PEFT (testdata/fixtures, plus
// every folder under $FTUNE_FIXTURES): logits, hidden states, loss, every
// gradient and greedy generation. It has no code outside its tests; it sits
// at the top of the layers so its tests may use every package.
package parity
