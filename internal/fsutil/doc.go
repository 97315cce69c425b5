// Package fsutil holds small file-system helpers shared by the packages that
// write user-visible files (safetensors, checkpoints, exports) and read
// untrusted ones whole (ReadFileLimit: a model's JSON files and templates).
//
// The main one is atomic replacement: a file is written to a temporary name in
// the same directory, flushed to disk with fsync, and renamed over the target,
// so a reader (or a crash) sees either the old file or the complete new one,
// never a torn write. The temporary lives in the target's directory because
// rename is only atomic within one file system.
package fsutil
