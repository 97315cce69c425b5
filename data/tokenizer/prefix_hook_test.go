package tokenizer

// CanCut reports whether t encodes prefixes of long texts (prefix.go), for
// the external tests.
func CanCut(t *Tokenizer) bool { return t.cuts }

// CutPrefix encodes text up to its first cut at or after from (without
// post-processing), and returns the cut, or -1 where there is none.
func CutPrefix(t *Tokenizer, text string, from int) ([]int, int) {
	tries := 0
	c := t.nextCut(text, from, &tries)
	if c < 0 {
		return nil, -1
	}
	raw, err := t.encodeRaw(text[:c], 0)
	if err != nil {
		panic(err)
	}
	return raw.ids, c
}
