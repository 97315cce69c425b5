package train

import "golang.org/x/sys/unix"

// exchangeDirs swaps the folders at a and b in one step
// (renameat2 RENAME_EXCHANGE, Linux 3.15+; a file system without it
// answers EINVAL and replaceDir renames instead).
func exchangeDirs(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}
