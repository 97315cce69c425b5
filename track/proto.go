package track

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A hand-written protobuf encoder and decoder for the few messages of
// TensorBoard's event files (tensorboard/compat/proto/event.proto,
// summary.proto, tensor.proto, plugins/hparams/plugin_data.proto). Pulling
// in a protobuf runtime and generated code for five messages would cost
// more than these hundred lines.

// Wire types.
const (
	wireVarint = 0
	wire64     = 1
	wireBytes  = 2
	wire32     = 5
)

// pb appends fields to a message. Callers write every field they mean:
// proto3 leaves zero scalars out, but a oneof member (simple_value,
// google.protobuf.Value's kinds) must be written even when zero, so
// skipping is decided here per call, not by the encoder.
type pb []byte

func (b pb) tag(field, wire int) pb { return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire)) }

func (b pb) varint(field int, v uint64) pb { return binary.AppendUvarint(b.tag(field, wireVarint), v) }

func (b pb) double(field int, v float64) pb {
	return binary.LittleEndian.AppendUint64(b.tag(field, wire64), math.Float64bits(v))
}

func (b pb) float(field int, v float32) pb {
	return binary.LittleEndian.AppendUint32(b.tag(field, wire32), math.Float32bits(v))
}

func (b pb) bytes(field int, p []byte) pb {
	b = binary.AppendUvarint(b.tag(field, wireBytes), uint64(len(p)))
	return append(b, p...)
}

func (b pb) str(field int, s string) pb { return b.bytes(field, []byte(s)) }

// pbField is one decoded field: num and wire type, with the value as an
// integer (varint, fixed32, fixed64 bits) or as bytes (length-delimited).
type pbField struct {
	num, wire int
	u         uint64
	data      []byte
}

var errProto = errors.New("malformed protobuf")

// pbFields splits a message into fields, checking every length.
func pbFields(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad field key", errProto)
		}
		b = b[n:]
		f := pbField{num: int(key >> 3), wire: int(key & 7)}
		if f.num == 0 {
			return nil, fmt.Errorf("%w: field number 0", errProto)
		}
		switch f.wire {
		case wireVarint:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("%w: bad varint in field %d", errProto, f.num)
			}
			f.u, b = v, b[n:]
		case wire64:
			if len(b) < 8 {
				return nil, fmt.Errorf("%w: short fixed64 in field %d", errProto, f.num)
			}
			f.u, b = binary.LittleEndian.Uint64(b), b[8:]
		case wire32:
			if len(b) < 4 {
				return nil, fmt.Errorf("%w: short fixed32 in field %d", errProto, f.num)
			}
			f.u, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, fmt.Errorf("%w: bad length in field %d", errProto, f.num)
			}
			f.data, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("%w: wire type %d in field %d", errProto, f.wire, f.num)
		}
		out = append(out, f)
	}
	return out, nil
}
