package format

import (
	"fmt"

	"github.com/ftune/ftune/internal/jsonsize"
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

// tooManyValues is the message of a record over maxRecordValues.
func tooManyValues() string {
	return fmt.Sprintf("a record holds more than %d JSON values (keys counted), the most ftune decodes in one example: no conversation, tool definitions or preference pair comes near it, and decoding them would take gigabytes of memory; is this the file you meant?", maxRecordValues)
}

// stringValues refuses s, the text of field name holding JSON (a CSV
// cell's messages, a call's arguments), when it holds more than
// maxRecordValues JSON values: what is the bound for a record's own JSON
// is the bound for the JSON its strings hold.
func stringValues(s, name string) error {
	if off, over := jsonsize.CountValues(s, maxRecordValues); over {
		return fmt.Errorf("%w: %s holds JSON text of more than %d JSON values (keys counted; past byte %d), the most ftune decodes in one example; is this the file you meant?", ErrRecordTooLarge, name, maxRecordValues, off+1)
	}
	return nil
}
