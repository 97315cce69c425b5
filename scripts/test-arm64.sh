#!/usr/bin/env bash
# Cross-compile the tests of Go packages for linux/arm64 and run them under
# qemu-user, so the NEON assembly is exercised on an amd64 machine.
#
# Usage: scripts/test-arm64.sh [package ...] [-- test-binary flags]
#   scripts/test-arm64.sh ./kernels/asm -- -test.run Sgemm -test.v
#   BUILDFLAGS='-tags purego' scripts/test-arm64.sh ./kernels/asm
# With no package, ./kernels/asm. Installs Debian's qemu-user-static when
# qemu-aarch64-static is missing (needs root and apt).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
	echo "test-arm64: installing qemu-user-static" >&2
	if ! apt-get install -y qemu-user-static >/dev/null; then
		apt-get update >/dev/null && apt-get install -y qemu-user-static >/dev/null
	fi
fi

pkgs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	pkgs+=("$1")
	shift
done
[ $# -gt 0 ] && shift # drop --
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./kernels/asm)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for pkg in "${pkgs[@]}"; do
	# shellcheck disable=SC2086 # BUILDFLAGS is a list of flags
	dir=$(go list ${BUILDFLAGS:-} -f '{{.Dir}}' "$pkg")
	bin="$tmp/$(basename "$dir").test"
	# shellcheck disable=SC2086
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go test ${BUILDFLAGS:-} -c -o "$bin" "$pkg"
	if [ ! -f "$bin" ]; then
		echo "test-arm64: $pkg has no test files" >&2
		continue
	fi
	echo "test-arm64: $pkg (qemu-aarch64-static)"
	# go test runs a package's tests in its directory (testdata/ is relative).
	if ! (cd "$dir" && qemu-aarch64-static "$bin" "$@"); then
		status=1
	fi
done
exit $status
