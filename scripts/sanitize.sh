# sanitize.sh (sourced by gpu-check.sh and gpu-bench.sh): the CUDA kernel
# tests under compute-sanitizer on a GPU machine, issue 10's "memcheck and
# racecheck come out clean".
#
# sanitize TEST LOG: runs kernels/cuda's test binary TEST (from the repo
# root, in kernels/cuda as go test would) under each tool of $SAN_TOOLS (default "memcheck racecheck"),
# each for at most $SAN_TIMEOUT seconds (default 80), appending the output
# to LOG and printing one summary line per tool. The tests are every
# kernel test (SAN_SEL, a -test.run pattern, overrides) but the
# allocator's loops and out-of-memory probes, which the tools slow down or
# report as errors by design, and cuBLASLt's (NVIDIA's library, not ours).
# A run stopped by its timeout still lists what passed under it. Returns
# non-zero when a tool reported an error, a test failed, or there is no
# compute-sanitizer.
sanitize() {
	local test log=$2 cs status=0 tool src t0=$SECONDS
	test=$(realpath "$1") # run from kernels/cuda, as go test would
	cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
	if [ -z "$cs" ]; then
		echo "compute-sanitizer not found; the sanitizers did not run" | tee -a "$log"
		return 1
	fi
	local sel=${SAN_SEL:-.} skip='^(TestAllocator.*|TestOutOfMemoryError|TestBLASLt.*|TestLt.*|TestSim.*|TestPTXUpToDate|TestKernelNames|TestAvailableNeverPanics)$'
	for tool in ${SAN_TOOLS-memcheck racecheck}; do
		(cd kernels/cuda && timeout "${SAN_TIMEOUT:-80}" "$cs" --tool "$tool" --error-exitcode 3 --print-limit 20 \
			"$test" -test.run "$sel" -test.skip "$skip" -test.v -test.count=1) >"$log.tmp" 2>&1
		src=$?
		echo "$tool rc=$src: $(grep -cE '^--- PASS' "$log.tmp") tests passed under it, $(grep -cE '^--- FAIL' "$log.tmp") failed; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log.tmp" | tail -1) ($((SECONDS - t0)) s$([ $src = 124 ] && echo ', stopped by the timeout'))"
		grep -E '^--- FAIL|=========' "$log.tmp" | head -20
		cat "$log.tmp" >>"$log"
		rm -f "$log.tmp"
		[ $src -eq 0 ] || status=1
	done
	return $status
}
