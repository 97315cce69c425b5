package track

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// LockFile names the process that has the run folder open: its pid, host
// and start time. It outlives the process, so that a run killed with
// SIGKILL (which never writes summary.json) is told apart from one still
// running: `ftune runs list` says "died" when the holder was on this host
// and its process is gone.
const LockFile = "run.lock"

// ErrRunLocked is returned by NewRun and ResumeRun when another process
// has the run folder open (the error names it).
var ErrRunLocked = errors.New("run folder locked")

// Holder is the content of LockFile.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

func (h Holder) String() string {
	host := h.Host
	if host == "" {
		host = "an unknown host"
	}
	return "process " + strconv.Itoa(h.PID) + " on " + host
}

// thisHolder describes the current process.
func thisHolder(now time.Time) Holder {
	host, _ := os.Hostname()
	return Holder{PID: os.Getpid(), Host: host, Started: now.UTC()}
}

// readHolder reads dir's LockFile; ok is false when there is none or it
// cannot be read (an older run folder).
func readHolder(dir string) (Holder, bool) {
	var h Holder
	data, err := fsutil.ReadFileLimit(filepath.Join(dir, LockFile), maxEnvBytes)
	if err != nil || len(data) == 0 || json.Unmarshal(data, &h) != nil || h.PID <= 0 {
		return h, false
	}
	return h, true
}

// gone reports whether h's process is known to have exited: same host and
// no such pid. A process on another host cannot be checked, so it is not
// gone.
func (h Holder) gone() bool {
	host, err := os.Hostname()
	if err != nil || host != h.Host {
		return false
	}
	return !processAlive(h.PID)
}

// writeHolder replaces the content of the (locked) file f with h, in place:
// renaming a new file over it would leave the lock on the old one.
func writeHolder(f *os.File, h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}
