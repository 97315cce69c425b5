# carry.sh (sourced by gpu-bench.sh and gpu-train.sh): the binaries a device
# session carries, packed here and unpacked on the GPU machine.
#
# The working tree travels with the carry and the device tool takes 64 MiB
# in all; the tracked tree is ~53.1 MiB (2026-12-07, after the committed
# PTX went from gzip to zstd: 2.2 MB less in the tree, and 2 MB less in the
# carry, whose binaries embed it; the margin was 2,451 bytes before, 4.0 MiB
# after). `gpu-bench.sh build` prints the total. The binaries share most of their
# code (each links the whole engine and the PTX), so one xz stream over a
# tar of all of them is far smaller than compressing each (five gpu-bench
# binaries, 41 MiB stripped: 7.6 MiB as one .tar.xz, 2026-12-05). The
# device parity binary is built with -tags devicecarry, which leaves out
# the CPU-only end-to-end family test: through ftune.Train it linked the
# embedded tiny-base model and the data pipeline, 10 MiB of the carry.

# pack_bins DIR NAME...: DIR/NAME... into DIR/bins.tar.xz, the loose files
# removed.
pack_bins() {
	local dir=$1
	shift
	rm -f "$dir"/*.gz "$dir/bins.tar.xz"
	tar -C "$dir" -cf - "$@" | xz -9e -T1 >"$dir/bins.tar.xz.tmp" && mv "$dir/bins.tar.xz.tmp" "$dir/bins.tar.xz" &&
		(cd "$dir" && rm -f "$@")
}

# unpack_bins DIR: DIR/bins.tar.xz unpacked in place (xz where the machine
# has it, else Python's tarfile, which torch's machines always have).
unpack_bins() {
	local dir=$1
	[ -e "$dir/bins.tar.xz" ] || return 0
	if command -v xz >/dev/null; then
		tar -C "$dir" -xJf "$dir/bins.tar.xz"
	else
		echo "carry: no xz on this machine: unpacking $dir/bins.tar.xz with Python's tarfile" >&2
		python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$dir/bins.tar.xz" "$dir"
	fi || { echo "carry: cannot unpack $dir/bins.tar.xz" >&2; return 1; }
	rm -f "$dir/bins.tar.xz"
}
