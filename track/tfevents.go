package track

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// TensorBoard event files are TFRecord files of serialized Event protos.
// Each record is
//
//	uint64 length (little endian)
//	uint32 masked CRC32C of the 8 length bytes
//	length bytes of data
//	uint32 masked CRC32C of the data
//
// and the first event of a file carries file_version "brain.Event:2".

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC32C rotated and offset, because a
// CRC of data that itself holds CRCs is weak.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// appendRecord frames data as one TFRecord.
func appendRecord(dst, data []byte) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(data)))
	dst = append(dst, n[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, maskedCRC(n[:]))
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, maskedCRC(data))
}

// ErrCorrupt is wrapped by errors for event records whose checksum or
// framing is wrong.
var ErrCorrupt = errors.New("corrupt event file")

// readRecords returns the data of every record in r. A file cut short in
// its last record (a crash mid-write) returns the records before it and an
// error wrapping io.ErrUnexpectedEOF.
func readRecords(r io.Reader) ([][]byte, error) {
	br := bufio.NewReader(r)
	var out [][]byte
	var off int64
	for {
		var head [12]byte
		n, err := io.ReadFull(br, head[:])
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("record at byte %d: %d of 12 header bytes: %w", off, n, io.ErrUnexpectedEOF)
		}
		if got, want := maskedCRC(head[:8]), binary.LittleEndian.Uint32(head[8:]); got != want {
			return out, fmt.Errorf("%w: record at byte %d: length checksum %08x, want %08x", ErrCorrupt, off, got, want)
		}
		length := binary.LittleEndian.Uint64(head[:8])
		if length > 1<<30 {
			return out, fmt.Errorf("%w: record at byte %d: length %d", ErrCorrupt, off, length)
		}
		data := make([]byte, length+4)
		if _, err := io.ReadFull(br, data); err != nil {
			return out, fmt.Errorf("record at byte %d: data cut short: %w", off, io.ErrUnexpectedEOF)
		}
		if got, want := maskedCRC(data[:length]), binary.LittleEndian.Uint32(data[length:]); got != want {
			return out, fmt.Errorf("%w: record at byte %d: data checksum %08x, want %08x", ErrCorrupt, off, got, want)
		}
		out = append(out, data[:length])
		off += 12 + int64(length) + 4
	}
}

// eventWriter appends events to one tfevents file.
type eventWriter struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

// newEventWriter creates dir/events.out.tfevents.<unix>.<host>.<pid>.<seq>,
// TensorBoard's naming (it only requires "tfevents" in the name; the rest
// keeps files of restarted runs apart and in order).
func newEventWriter(dir string, now time.Time) (*eventWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	base := fmt.Sprintf("events.out.tfevents.%010d.%s.%d", now.Unix(), host, os.Getpid())
	var f *os.File
	var path string
	for seq := 0; ; seq++ {
		path = filepath.Join(dir, fmt.Sprintf("%s.%d", base, seq))
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || seq > 1000 {
			return nil, err
		}
	}
	w := &eventWriter{f: f, w: bufio.NewWriter(f), path: path}
	return w, w.write(encodeFileVersion(now))
}

func (e *eventWriter) write(event []byte) error {
	if _, err := e.w.Write(appendRecord(nil, event)); err != nil {
		return fmt.Errorf("write %s: %w", e.path, err)
	}
	return nil
}

// flush hands buffered records to the OS, so TensorBoard sees them.
func (e *eventWriter) flush() error { return e.w.Flush() }

func (e *eventWriter) sync() error {
	if err := e.w.Flush(); err != nil {
		return err
	}
	return e.f.Sync()
}

func (e *eventWriter) close() error {
	err := e.sync()
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Event is a decoded TensorBoard event: what ReadEvents returns.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Values      []SummaryValue // the Summary's values, if the event holds one
	// SessionStatus is SessionLog.status (1 START, 2 STOP, 3 CHECKPOINT);
	// 0 when the event has no session log.
	SessionStatus int
}

// SummaryValue is one Summary.Value.
type SummaryValue struct {
	Tag           string
	HasSimple     bool
	Simple        float32 // simple_value: scalars
	Plugin        string  // metadata.plugin_data.plugin_name
	PluginContent []byte  // metadata.plugin_data.content
	Strings       []string
	TensorDType   int // tensor.dtype (7 = DT_STRING)
}

// ReadEvents decodes every event of a tfevents file, verifying each
// record's checksums.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, rerr := readRecords(f)
	out := make([]Event, 0, len(recs))
	for i, r := range recs {
		ev, err := decodeEvent(r)
		if err != nil {
			return out, fmt.Errorf("%s: event %d: %w", path, i, err)
		}
		out = append(out, ev)
	}
	if rerr != nil {
		return out, fmt.Errorf("%s: %w", path, rerr)
	}
	return out, nil
}

// EventFiles lists the tfevents files under dir in name (= time) order.
func EventFiles(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	sort.Strings(m)
	return m, err
}

func decodeEvent(b []byte) (Event, error) {
	var ev Event
	fs, err := pbFields(b)
	if err != nil {
		return ev, err
	}
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wire64:
			ev.WallTime = math.Float64frombits(f.u)
		case f.num == 2 && f.wire == wireVarint:
			ev.Step = int64(f.u)
		case f.num == 3 && f.wire == wireBytes:
			ev.FileVersion = string(f.data)
		case f.num == 5 && f.wire == wireBytes:
			if ev.Values, err = decodeSummary(f.data); err != nil {
				return ev, fmt.Errorf("summary: %w", err)
			}
		case f.num == 7 && f.wire == wireBytes:
			sl, err := pbFields(f.data)
			if err != nil {
				return ev, fmt.Errorf("session log: %w", err)
			}
			for _, s := range sl {
				if s.num == 1 {
					ev.SessionStatus = int(s.u)
				}
			}
		}
	}
	return ev, nil
}

func decodeSummary(b []byte) ([]SummaryValue, error) {
	fs, err := pbFields(b)
	if err != nil {
		return nil, err
	}
	var out []SummaryValue
	for _, f := range fs {
		if f.num != 1 || f.wire != wireBytes {
			continue
		}
		vf, err := pbFields(f.data)
		if err != nil {
			return nil, err
		}
		var v SummaryValue
		for _, g := range vf {
			switch {
			case g.num == 1 && g.wire == wireBytes:
				v.Tag = string(g.data)
			case g.num == 2 && g.wire == wire32:
				v.HasSimple, v.Simple = true, math.Float32frombits(uint32(g.u))
			case g.num == 9 && g.wire == wireBytes:
				if v.Plugin, v.PluginContent, err = decodeMetadata(g.data); err != nil {
					return nil, err
				}
			case g.num == 8 && g.wire == wireBytes:
				if v.TensorDType, v.Strings, err = decodeStringTensor(g.data); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func decodeMetadata(b []byte) (plugin string, content []byte, err error) {
	fs, err := pbFields(b)
	if err != nil {
		return "", nil, err
	}
	for _, f := range fs {
		if f.num != 1 || f.wire != wireBytes {
			continue
		}
		pd, err := pbFields(f.data)
		if err != nil {
			return "", nil, err
		}
		for _, p := range pd {
			switch p.num {
			case 1:
				plugin = string(p.data)
			case 2:
				content = p.data
			}
		}
	}
	return plugin, content, nil
}

func decodeStringTensor(b []byte) (dtype int, strs []string, err error) {
	fs, err := pbFields(b)
	if err != nil {
		return 0, nil, err
	}
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wireVarint:
			dtype = int(f.u)
		case f.num == 8 && f.wire == wireBytes:
			strs = append(strs, string(f.data))
		}
	}
	return dtype, strs, nil
}
