// Package parquet adds parquet files to data/format's readers. It is a
// package of its own, registered by a blank import as image/png is, so
// that programs which never read datasets (generation) do not link
// parquet-go:
//
//	import _ "github.com/ftune/ftune/data/format/parquet"
//
// after which format.Open reads .parquet files like the other formats.
package parquet

import (
	"fmt"
	"io"
	"os"

	pq "github.com/parquet-go/parquet-go"

	"github.com/ftune/ftune/data/format"
)

func init() { format.RegisterFileKind(format.KindParquet, open) }

// open is the format.FileOpener of parquet files.
func open(f *os.File, name string) (format.FileSource, error) { return newParquetSource(f, name) }

// parquetSource reads rows in small batches through parquet-go's generic
// reader; only the current page and batch are in memory. Positions are row
// numbers (1-based) since parquet has no lines.
type parquetSource struct {
	name  string
	f     *os.File
	r     *pq.GenericReader[any]
	batch []any
	pos   int // index in batch
	n     int // rows in batch
	row   int
	eof   bool
}

func newParquetSource(f *os.File, name string) (src *parquetSource, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// parquet-go panics on some corrupt inputs; a dataset file must never
	// crash the process.
	defer func() {
		if p := recover(); p != nil {
			src, err = nil, &format.PosError{File: name, Msg: fmt.Sprintf("corrupt parquet file: %v", p), Err: format.ErrMalformed}
		}
	}()
	if err := checkFile(f, st.Size(), name); err != nil {
		return nil, err
	}
	// The page index and bloom filters are not needed to read every row,
	// and checkFile does not bound them.
	pf, err := pq.OpenFile(f, st.Size(), pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return nil, &format.PosError{File: name, Msg: "not a readable parquet file: " + err.Error(), Err: format.ErrMalformed}
	}
	r := pq.NewGenericReader[any](pf)
	return &parquetSource{name: name, f: f, r: r, batch: make([]any, 64)}, nil
}

func (s *parquetSource) Close() error {
	s.r.Close()
	return s.f.Close()
}

func (s *parquetSource) Next() (rec format.Record, err error, fatal bool) {
	if s.pos >= s.n {
		if s.eof {
			return format.Record{}, io.EOF, true
		}
		if err := s.fill(); err != nil {
			return format.Record{}, err, true
		}
		if s.n == 0 {
			return format.Record{}, io.EOF, true
		}
	}
	v := s.batch[s.pos]
	s.batch[s.pos] = nil
	s.pos++
	s.row++
	fields, ok := v.(map[string]any)
	if !ok {
		return format.Record{}, &format.PosError{File: s.name, Row: s.row, Msg: fmt.Sprintf("expected a row with named columns, found %T", v), Err: format.ErrMalformed}, false
	}
	for k, x := range fields {
		fields[k] = plainValue(x)
	}
	return format.Record{Fields: fields, Row: s.row}, nil, false
}

func (s *parquetSource) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &format.PosError{File: s.name, Row: s.row + 1, Msg: fmt.Sprintf("corrupt parquet data: %v", p), Err: format.ErrMalformed}
		}
	}()
	for i := range s.batch {
		s.batch[i] = nil
	}
	n, rerr := s.r.Read(s.batch)
	s.n, s.pos = n, 0
	if rerr == io.EOF {
		s.eof = true
		return nil
	}
	if rerr != nil {
		return &format.PosError{File: s.name, Row: s.row + 1, Msg: "reading parquet rows: " + rerr.Error(), Err: format.ErrMalformed}
	}
	return nil
}

// plainValue turns the values parquet-go builds for nested columns into
// the same []any / map[string]any / string forms the JSON readers produce.
func plainValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case []any:
		for i := range x {
			x[i] = plainValue(x[i])
		}
		return x
	case map[string]any:
		// A parquet LIST is stored as {list: [{element: ...}]} by some
		// writers (pyarrow); unwrap it to a plain list.
		if l, ok := x["list"].([]any); ok && len(x) == 1 {
			out := make([]any, len(l))
			for i, e := range l {
				if m, ok := e.(map[string]any); ok && len(m) == 1 {
					if el, ok := m["element"]; ok {
						out[i] = plainValue(el)
						continue
					}
					if el, ok := m["item"]; ok {
						out[i] = plainValue(el)
						continue
					}
				}
				out[i] = plainValue(e)
			}
			return out
		}
		for k, e := range x {
			x[k] = plainValue(e)
		}
		return x
	}
	return v
}
