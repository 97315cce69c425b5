package export

import (
	"os"
	"syscall"
	"time"
)

// changedAt is the later of fi's modification and status-change times:
// fsutil.AtomicFile.Commit changes the mode of its file (the status time)
// after its last write and sync, just before it closes and renames it.
func changedAt(fi os.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(t) {
			t = c
		}
	}
	return t
}
