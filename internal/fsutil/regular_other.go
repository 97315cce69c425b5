//go:build !unix

package fsutil

import "os"

// openNoBlock is nothing here (Windows, Plan 9, WebAssembly): there is no
// O_NONBLOCK to ask for. OpenRegular's check on the opened file still
// refuses what is not regular; Windows keeps its named pipes under
// \\.\pipe\, outside the folders a model lives in.
const openNoBlock = 0

func clearNoBlock(*os.File) error { return nil }
