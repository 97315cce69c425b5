package export

import "golang.org/x/sys/unix"

// exchange swaps two paths atomically (renamex_np RENAME_SWAP, on APFS and
// HFS+): at every instant the target is either the old or the new folder.
// Elsewhere it fails, and install falls back to two renames.
func exchange(a, b string) error {
	return unix.RenamexNp(a, b, unix.RENAME_SWAP)
}
