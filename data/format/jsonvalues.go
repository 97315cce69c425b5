package format

import (
	"bytes"
	"fmt"
	"strings"
)

// maxRecordValues bounds the JSON values (keys counted) of one record, or
// of the JSON text a string of a record holds (a CSV cell's messages, a
// call's arguments), counted before encoding/json decodes it.
//
// The byte bound, Options.MaxRecordBytes, does not bound the memory a
// record takes decoded: encoding/json gives every value its own interface
// and allocation, so a 63 MiB line of 33 million numbers ([0,0,0,...])
// took 3.0 GB of memory and 31 s to read, of 22 million empty objects
// 2.7 GB, of 13 million nulls 1.0 GB (3.5 GB and 51 s for the numbers as
// a .json file's one object), where a 60 MB string takes 0.4 GB and 3 s.
// Decoded, a value costs about 100 bytes of peak memory, so 2,000,000 of
// them hold a record's decoding to about the 0.2 to 0.4 GB that the byte
// bound allows a string; counted, refused records take 0.13 to 0.4 GB.
//
// No training record comes near it: a long chat is a few values a
// message (role, content, perhaps a name and tool calls), so 10,000 turns
// are some 50,000; a tool-calling conversation's JSON-schema tool
// definitions are a few hundred values a tool, so hundreds of tools are
// under 100,000; a preference pair is two such conversations; and columns
// a preprocessed dataset keeps beside its text (a 32k-token input_ids,
// attention_mask and labels, an embedding) are some 100,000 more. The
// bound is 20 times the largest of these.
const maxRecordValues = 2_000_000

// countValues counts the JSON values in raw, keys included, up to max:
// past it, over is true and off is the byte offset of the value that
// runs past. Strings are skipped whole, escapes respected, so that
// brackets and digits in text count for nothing. raw need not be valid
// JSON (the decoder reports what is wrong with it afterwards): the count
// is only a bound on what decoding it would allocate.
func countValues[T string | []byte](raw T, max int) (off int, over bool) {
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

// tooManyValues is the message of a record over maxRecordValues.
func tooManyValues() string {
	return fmt.Sprintf("a record holds more than %d JSON values (keys counted), the most ftune decodes in one example: no conversation, tool definitions or preference pair comes near it, and decoding them would take gigabytes of memory; is this the file you meant?", maxRecordValues)
}

// stringValues refuses s, the text of field name holding JSON (a CSV
// cell's messages, a call's arguments), when it holds more than
// maxRecordValues JSON values: what is the bound for a record's own JSON
// is the bound for the JSON its strings hold.
func stringValues(s, name string) error {
	if off, over := countValues(s, maxRecordValues); over {
		return fmt.Errorf("%w: %s holds JSON text of more than %d JSON values (keys counted; past byte %d), the most ftune decodes in one example; is this the file you meant?", ErrRecordTooLarge, name, maxRecordValues, off+1)
	}
	return nil
}
