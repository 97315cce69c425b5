package format

import (
	"fmt"
	"os"
	"sync"
)

// FileSource yields the records of a file kind that another package
// provides (data/format/parquet). Next returns io.EOF after the last
// record; an error about a record is a *PosError, and fatal says whether
// reading cannot go on after it.
type FileSource interface {
	Next() (rec Record, err error, fatal bool)
	Close() error
}

// FileOpener opens a FileSource on f (the file's name is for positions).
// It owns f from then on: FileSource.Close closes it.
type FileOpener func(f *os.File, name string) (FileSource, error)

// fileKinds holds the registered openers of kinds that need a whole file
// (random access), as database/sql holds drivers.
var fileKinds = struct {
	sync.RWMutex
	open map[Kind]FileOpener
}{open: map[Kind]FileOpener{}}

// RegisterFileKind makes Open read files of kind with open. Packages call
// it from init; registering a kind twice panics (two packages claiming one
// format is a build mistake, as with sql.Register).
func RegisterFileKind(kind Kind, open FileOpener) {
	fileKinds.Lock()
	defer fileKinds.Unlock()
	if _, dup := fileKinds.open[kind]; dup {
		panic(fmt.Sprintf("format: file kind %q registered twice", kind))
	}
	fileKinds.open[kind] = open
}

func fileOpener(kind Kind) (FileOpener, bool) {
	fileKinds.RLock()
	defer fileKinds.RUnlock()
	open, ok := fileKinds.open[kind]
	return open, ok
}

// kindPackages names the package that provides each file kind, for the
// error of a program built without it.
var kindPackages = map[Kind]string{KindParquet: "github.com/ftune/ftune/data/format/parquet"}

// fileSource adapts a FileSource to the readers' source.
type fileSource struct{ FileSource }

func (s fileSource) next() (Record, error, bool) { return s.Next() }
func (s fileSource) close() error                { return s.Close() }
