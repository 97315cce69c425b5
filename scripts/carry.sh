# carry.sh (sourced by gpu-bench.sh and gpu-train.sh): the binaries a device
# session carries, packed here and unpacked on the GPU machine.
#
# The working tree travels with the carry and the device tool takes 64 MiB
# in all; the tracked tree is ~45 MiB. The binaries share most of their
# code (each links the whole engine), so one xz stream over a tar of all of
# them is ~2.5x smaller than gzipping each (four gpu-bench binaries, 31 MiB
# stripped: 17.5 MiB as .gz files, 6.6 MiB as one .tar.xz).

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
