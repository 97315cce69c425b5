// Package jsonsize bounds what decoding untrusted JSON would allocate
// before encoding/json does: decoded, every JSON value costs an interface
// and an allocation (about 100 bytes of peak memory), so a file's byte
// bound does not bound its decoding (a 63 MiB list of numbers took 3 GB).
package jsonsize

import (
	"bytes"
	"strings"
)

// CountValues counts the JSON values in raw, keys included, up to max:
// past it, over is true and off is the byte offset of the value that
// runs past. Strings are skipped whole, escapes respected, so that
// brackets and digits in text count for nothing. raw need not be valid
// JSON (the decoder reports what is wrong with it afterwards): the count
// is only a bound on what decoding it would allocate.
func CountValues[T string | []byte](raw T, max int) (off int, over bool) {
	n := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case ' ', '\t', '\r', '\n', ',', ':', ']', '}':
			continue
		case '"':
			// The closing quote is the first one not escaped: preceded by
			// an even number of backslashes.
			j := i + 1
			for {
				k := indexQuote(raw[j:])
				if k < 0 {
					j = len(raw)
					break
				}
				j += k
				bs := 0
				for b := j - 1; b > i && raw[b] == '\\'; b-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
				j++
			}
			if n++; n > max {
				return i, true
			}
			i = j
		case '{', '[':
			if n++; n > max {
				return i, true
			}
		default:
			// A number or a literal (true, false, null), or a byte that is
			// not JSON: one value, to the next delimiter.
			if n++; n > max {
				return i, true
			}
			for i+1 < len(raw) && !jsonDelim(raw[i+1]) {
				i++
			}
		}
	}
	return 0, false
}

// indexQuote is the index of the first '"' in b, or -1.
func indexQuote[T string | []byte](b T) int {
	switch v := any(b).(type) {
	case string:
		return strings.IndexByte(v, '"')
	case []byte:
		return bytes.IndexByte(v, '"')
	}
	return -1
}

func jsonDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', '[', ']', '{', '}', '"':
		return true
	}
	return false
}
