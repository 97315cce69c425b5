package track

import (
	"bytes"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCRC32CIsCastagnoli(t *testing.T) {
	// The CRC-32C check value (RFC 3720 B.4): crc32c("123456789").
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xE3069283 {
		t.Fatalf("crc32c = %08x, want e3069283", got)
	}
	// Masking rotates right by 15 and adds 0xa282ead8 (mod 2^32).
	c := uint32(0xE3069283)
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := maskedCRC([]byte("123456789")); got != want {
		t.Fatalf("masked = %08x, want %08x", got, want)
	}
}

// The bytes below were written out by hand from event.proto and
// summary.proto, independent of the decoder: wall_time (field 1, fixed64)
// 1.5, step (2, varint) 3, summary (5, bytes) holding one value (1, bytes)
// with tag (1) "a" and simple_value (2, fixed32) 1.0.
func TestScalarEventGoldenBytes(t *testing.T) {
	got := encodeScalars(time.Unix(1, 5e8), 3, map[string]float64{"a": 1})
	want, _ := hex.DecodeString(
		"09" + "000000000000f83f" + // wall_time 1.5
			"1003" + // step 3
			"2a0a" + // summary, 10 bytes
			"0a08" + // value, 8 bytes
			"0a0161" + // tag "a"
			"150000803f") // simple_value 1.0
	if !bytes.Equal(got, want) {
		t.Fatalf("event bytes\n got  %x\n want %x", got, want)
	}
}

func TestRecordFraming(t *testing.T) {
	payloads := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("ab"), 1000)}
	var file []byte
	for _, p := range payloads {
		file = appendRecord(file, p)
	}
	if want := 3*16 + 0 + 1 + 2000; len(file) != want {
		t.Fatalf("file is %d bytes, want %d (16 bytes of framing per record)", len(file), want)
	}
	recs, err := readRecords(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(payloads) {
		t.Fatalf("%d records, want %d", len(recs), len(payloads))
	}
	for i := range recs {
		if !bytes.Equal(recs[i], payloads[i]) {
			t.Errorf("record %d differs", i)
		}
	}

	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
		want   error
		kept   int
	}{
		{"flipped length", func(b []byte) []byte { b[0] ^= 1; return b }, ErrCorrupt, 0},
		{"flipped data", func(b []byte) []byte { b[16+12] ^= 0x20; return b }, ErrCorrupt, 1},
		{"flipped data crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt, 2},
		{"cut in header", func(b []byte) []byte { return b[:16+5] }, io.ErrUnexpectedEOF, 1},
		{"cut in data", func(b []byte) []byte { return b[:len(b)-10] }, io.ErrUnexpectedEOF, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mangle(append([]byte(nil), file...))
			recs, err := readRecords(bytes.NewReader(b))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if len(recs) != tc.kept {
				t.Fatalf("kept %d records before the damage, want %d", len(recs), tc.kept)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 250e6)
	hp := map[string]any{"training.optimizer.lr": 2e-4, "model.path": "tiny-base", "data.packing": false, "training.lora.r": 8}
	events := [][]byte{
		encodeFileVersion(at),
		encodeScalars(at, 7, map[string]float64{"train/loss": 2.5, "train/lr": 0, "val/loss": math.NaN()}),
		encodeText(at, 9, "samples/q1", "Q: 2+2?\nA: **4**"),
		encodeHParamsStart(at, hp),
		encodeHParamsEnd(at, hpStatusSuccess),
		encodeSessionStart(at, 5),
	}
	var file []byte
	for _, e := range events {
		file = appendRecord(file, e)
	}
	path := filepath.Join(t.TempDir(), "events.out.tfevents.1")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEvents(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("%d events, want %d", len(got), len(events))
	}
	if got[0].FileVersion != "brain.Event:2" || got[0].WallTime != 1700000000.25 {
		t.Errorf("file version event: %+v", got[0])
	}
	sc := got[1]
	if sc.Step != 7 || len(sc.Values) != 3 {
		t.Fatalf("scalar event: %+v", sc)
	}
	// train/lr = 0 must be present: simple_value is a oneof member.
	for i, want := range []struct {
		tag string
		v   float64
	}{{"train/loss", 2.5}, {"train/lr", 0}, {"val/loss", math.NaN()}} {
		v := sc.Values[i]
		same := float64(v.Simple) == want.v || (math.IsNaN(want.v) && math.IsNaN(float64(v.Simple)))
		if v.Tag != want.tag || !v.HasSimple || !same {
			t.Errorf("value %d = %+v, want %s %v", i, v, want.tag, want.v)
		}
	}
	tx := got[2].Values[0]
	if got[2].Step != 9 || tx.Tag != "samples/q1" || tx.Plugin != "text" || tx.TensorDType != dtString ||
		len(tx.Strings) != 1 || tx.Strings[0] != "Q: 2+2?\nA: **4**" {
		t.Errorf("text event: %+v", got[2])
	}
	hs := got[3].Values[0]
	if hs.Tag != "_hparams_/session_start_info" || hs.Plugin != "hparams" {
		t.Fatalf("hparams start: %+v", hs)
	}
	dec, err := decodeHParamsStart(hs.PluginContent)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"training.optimizer.lr": 2e-4, "model.path": "tiny-base", "data.packing": false, "training.lora.r": 8.0} {
		if dec[k] != want {
			t.Errorf("hparam %s = %#v, want %#v", k, dec[k], want)
		}
	}
	if len(dec) != len(hp) {
		t.Errorf("decoded %d hparams, want %d", len(dec), len(hp))
	}
	he := got[4].Values[0]
	if he.Tag != "_hparams_/session_end_info" || he.Plugin != "hparams" {
		t.Errorf("hparams end: %+v", he)
	}
	if st, err := decodeHParamsEndStatus(he.PluginContent); err != nil || st != hpStatusSuccess {
		t.Errorf("end status %d, %v; want %d", st, err, hpStatusSuccess)
	}
	if got[5].SessionStatus != sessionStart || got[5].Step != 5 {
		t.Errorf("session log: %+v", got[5])
	}
}

// decodeHParamsStart reads HParamsPluginData{session_start_info} back:
// the map entries of hparams and their google.protobuf.Value kinds.
func decodeHParamsStart(b []byte) (map[string]any, error) {
	top, err := pbFields(b)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range top {
		if f.num != hpSessionStart {
			continue
		}
		ssi, err := pbFields(f.data)
		if err != nil {
			return nil, err
		}
		for _, e := range ssi {
			if e.num != ssiHParams {
				continue
			}
			kv, err := pbFields(e.data)
			if err != nil {
				return nil, err
			}
			var key string
			var val any
			for _, x := range kv {
				switch x.num {
				case 1:
					key = string(x.data)
				case 2:
					vs, err := pbFields(x.data)
					if err != nil {
						return nil, err
					}
					for _, v := range vs {
						switch v.num {
						case pvNumber:
							val = math.Float64frombits(v.u)
						case pvString:
							val = string(v.data)
						case pvBool:
							val = v.u != 0
						}
					}
				}
			}
			out[key] = val
		}
	}
	return out, nil
}

func decodeHParamsEndStatus(b []byte) (int, error) {
	top, err := pbFields(b)
	if err != nil {
		return 0, err
	}
	for _, f := range top {
		if f.num == hpSessionEnd {
			sei, err := pbFields(f.data)
			if err != nil {
				return 0, err
			}
			for _, s := range sei {
				if s.num == seiStatus {
					return int(s.u), nil
				}
			}
		}
	}
	return 0, errors.New("no session end status")
}

func TestProtoDecoderRejectsGarbage(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"field 0", []byte{0x00, 0x01}},
		{"length past end", []byte{0x0a, 0x05, 'a'}},
		{"short fixed64", []byte{0x09, 1, 2, 3}},
		{"short fixed32", []byte{0x15, 1}},
		{"bad wire type", []byte{0x0b}},
		{"unterminated varint", []byte{0x10, 0x80}},
	} {
		if _, err := pbFields(tc.b); !errors.Is(err, errProto) {
			t.Errorf("%s: error %v, want errProto", tc.name, err)
		}
	}
}
