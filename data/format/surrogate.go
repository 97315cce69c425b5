package format

import "bytes"

// loneSurrogate finds the first \u escape in raw, JSON text, that is a
// UTF-16 surrogate outside a high-low pair ("\ud800" alone), with its
// byte offset. encoding/json decodes such an escape to U+FFFD without a
// word, which would train the model on a replacement character where the
// file meant something else: it is refused as invalid UTF-8 is.
func loneSurrogate(raw []byte) (offset int, found bool) {
	if !bytes.Contains(raw, []byte(`\u`)) {
		return 0, false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			if i+1 >= len(raw) || raw[i+1] != 'u' {
				i++ // a two-byte escape: \" and \\ among them
				continue
			}
			r, ok := hex4(raw, i+2)
			if !ok {
				continue // not valid JSON: the decoder reports it
			}
			switch {
			case r >= 0xd800 && r < 0xdc00: // high: a low must follow
				if i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
					if lo, ok := hex4(raw, i+8); ok && lo >= 0xdc00 && lo < 0xe000 {
						i += 11
						continue
					}
				}
				return i, true
			case r >= 0xdc00 && r < 0xe000: // a low without its high
				return i, true
			}
			i += 5
		}
	}
	return 0, false
}

// hex4 reads the four hex digits at raw[i:].
func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
