package format

import (
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
)

// parquetSource reads rows in small batches through parquet-go's generic
// reader; only the current page and batch are in memory. Positions are row
// numbers (1-based) since parquet has no lines.
type parquetSource struct {
	name  string
	f     *os.File
	r     *parquet.GenericReader[any]
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
			src, err = nil, &PosError{File: name, Line: 0, Msg: fmt.Sprintf("corrupt parquet file: %v", p), Err: ErrMalformed}
		}
	}()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, &PosError{File: name, Msg: "not a readable parquet file: " + err.Error(), Err: ErrMalformed}
	}
	r := parquet.NewGenericReader[any](pf)
	return &parquetSource{name: name, f: f, r: r, batch: make([]any, 64)}, nil
}

func (s *parquetSource) close() error {
	s.r.Close()
	return s.f.Close()
}

func (s *parquetSource) next() (rec Record, err error, fatal bool) {
	if s.pos >= s.n {
		if s.eof {
			return Record{}, io.EOF, true
		}
		if err := s.fill(); err != nil {
			return Record{}, err, true
		}
		if s.n == 0 {
			return Record{}, io.EOF, true
		}
	}
	v := s.batch[s.pos]
	s.batch[s.pos] = nil
	s.pos++
	s.row++
	fields, ok := v.(map[string]any)
	if !ok {
		return Record{}, &PosError{File: s.name, Line: s.row, Msg: fmt.Sprintf("expected a row with named columns, found %T", v), Err: ErrMalformed}, false
	}
	for k, x := range fields {
		fields[k] = plainValue(x)
	}
	return Record{Fields: fields, Line: s.row}, nil, false
}

func (s *parquetSource) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PosError{File: s.name, Line: s.row + 1, Msg: fmt.Sprintf("corrupt parquet data: %v", p), Err: ErrMalformed}
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
		return &PosError{File: s.name, Line: s.row + 1, Msg: "reading parquet rows: " + rerr.Error(), Err: ErrMalformed}
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
