package export

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// tempName matches the names ftune gives the temporaries of its writes
// beside an output, and captures the output's name: ".<name>.tmp-<digits>"
// (fsutil.CreateAtomic's files, startTemp's folders). A user's file may
// be named so too (".draft.md.tmp-20251201").
var tempName = regexp.MustCompile(`^\.(.+)\.tmp-\d+$`)

// maxNamedTemps is how many of othersTemps' entries a note names (with
// their size); the rest are counted.
const maxNamedTemps = 10

// othersTemps says what in out's folder is named as the temporaries of
// exports of other outputs than out are (tempName): what such an export
// left when it was killed (kill -9, a crash, a full disk) before it
// finished, which only an export to its own path removes
// (removeKilledTemps, RemoveKilledTempFiles), and which may be as large as
// a model. Nothing is removed: such a name does not prove a file is a
// leftover (a user's file may be named so, another export may be writing
// it, another user may own it); the note names them, with their size,
// for the user to remove by hand. It reads the folder once (and the
// sizes of the entries it names), and fails nothing: an unreadable folder
// gives no note.
func othersTemps(out string) []string {
	parent, own := filepath.Dir(out), filepath.Base(out)
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var named []string
	n := 0
	for _, e := range ents {
		m := tempName.FindStringSubmatch(e.Name())
		if m == nil || m[1] == own {
			continue
		}
		n++
		if len(named) < maxNamedTemps {
			named = append(named, fmt.Sprintf("%s (%s)", e.Name(), fsutil.FormatBytes(sizeOf(filepath.Join(parent, e.Name())))))
		}
	}
	if n == 0 {
		return nil
	}
	list := strings.Join(named, ", ")
	if n > len(named) {
		list += fmt.Sprintf(" and %d more", n-len(named))
	}
	return []string{fmt.Sprintf("%s holds %d file(s) or folder(s) named as the temporaries of exports of other outputs (.NAME.tmp-DIGITS), which an export killed before it finished leaves, but which may be another export's at work or your own: %s; ftune removes none of them: if they are not yours and no export into %s is running, remove them by hand (rm -r -- %s)",
		parent, n, list, parent, filepath.Join(parent, ".NAME.tmp-DIGITS"))}
}

// sizeOf is the bytes of the regular files at or under p (what can be
// read of them).
func sizeOf(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
