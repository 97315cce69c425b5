// Package fsutil holds small file-system helpers shared by the packages that
// write user-visible files (safetensors, checkpoints, exports) and read
// untrusted ones: OpenRegular opens a file of a model folder without
// blocking and refuses what is not a regular file (a named pipe, a device),
// and ReadFileLimit reads such a file whole (a model's JSON files and
// templates) within a size limit.
//
// The main one is atomic replacement: a file is written to a temporary name in
// the same directory, flushed to disk with fsync, and renamed over the target,
// so a reader (or a crash) sees either the old file or the complete new one,
// never a torn write. The temporary lives in the target's directory because
// rename is only atomic within one file system.
package fsutil
