#!/bin/bash
# make-fixtures.sh: generate the transformers/PEFT golden fixtures
# (testdata/fixtures/make_fixtures.py, and make_dpo_fixture.py's
# llama-tiny-dpo on llama-tiny) where transformers and PEFT run, bring
# them back into testdata/fixtures and check ftune against them.
#
#   scripts/make-fixtures.sh device [NAME ...]
#       On a machine whose python3 has torch, transformers and peft (the GPU
#       machine: transformers 5.17, PEFT 0.21), from the repo root: write
#       every fixture folder (or only NAMEs) on the CPU in float32 and pack
#       them into $OUT (default ./fixtures-out) as fixtures.tar.gz.00, .01,
#       ... (15 MiB parts) with make-fixtures.log: at most 5 files, about a
#       minute, nothing to carry. Unless MAKE_FIXTURES_NO_PARITY=1 (gpu-bench.sh
#       session checks them itself), when the parity test binary was carried
#       (.gpubench/parity.test, unpacked by a scripts/gpu-bench.sh device
#       run before this one, or .gpucheck/parity.test.xz, see build), TestParity also runs there on the new folders, and
#       TestParityCUDA when a GPU is present.
#   scripts/make-fixtures.sh install DIR [--replace]
#       Here: unpack DIR/fixtures.tar.gz.* into testdata/fixtures (new
#       folders; a folder already there is compared, and replaced only with
#       --replace), then run TestParity here on every folder.
#   scripts/make-fixtures.sh here [--replace] [NAME ...]
#       Here, as root, without a GPU machine: `device` in a Debian sid root
#       that has transformers and PEFT (scripts/hf-root.sh: PEFT_SRC names a
#       checkout of huggingface/peft), into .fixtures-out (ignored), then
#       `install` from there.
#   scripts/make-fixtures.sh build
#       Here, optional: cross-build the parity test binary, xz-compressed
#       (about 13 MB), into .gpucheck/ (ignored by git), for a device run
#       that checks parity there too (carry .gpucheck). The device tool sends
#       at most 64 MiB with the working tree: check that both fit.
#
# Exit status: non-zero when a fixture failed to generate or a parity check
# failed; the folders that were made are packed (device) or installed
# (install) all the same, so the failures can be read from them.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.gpucheck
PART=15m

build() {
	set -e
	mkdir -p "$BIN"
	local exclude
	exclude=$(git rev-parse --git-path info/exclude) # a worktree's .git is a file
	mkdir -p "$(dirname "$exclude")"
	grep -qx "/$BIN/" "$exclude" 2>/dev/null || echo "/$BIN/" >>"$exclude"
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go test -c -tags devicecarry -ldflags="-s -w" -o "$BIN/parity.test" ./parity
	xz -T2 -6 -f "$BIN/parity.test"
	python3 testdata/fixtures/make_fixtures.py --check >/dev/null
	ls -la "$BIN/parity.test.xz"
	echo "tracked and untracked files: $(git ls-files -co --exclude-standard -z | du --files0-from=- -cb | tail -1 | cut -f1) bytes; with $BIN: $(( $(git ls-files -co --exclude-standard -z | du --files0-from=- -cb | tail -1 | cut -f1) + $(du -sb "$BIN" | cut -f1) )) (the device tool's limit: $((64 << 20)))"
	echo "device command: bash scripts/make-fixtures.sh device   (carry: $BIN)"
}

device() {
	OUT=${OUT:-$PWD/fixtures-out}
	mkdir -p "$OUT"
	local log="$OUT/make-fixtures.log" work status=0 t0=$SECONDS
	work=$(mktemp -d)
	: >"$log"
	{
		date -u
		python3 -c 'import sys, torch, transformers, peft; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' 2>&1
		[ -z "${PEFT_REV:-}" ] || echo "peft source: $PEFT_REV"
	} | tee -a "$log"

	echo "== make_fixtures.py" | tee -a "$log"
	# PYTHONHASHSEED: PEFT writes target_modules from a set, whose order
	# otherwise changes from run to run
	PYTHONHASHSEED=0 PYTHONUNBUFFERED=1 timeout 420 python3 testdata/fixtures/make_fixtures.py "$work/fixtures" "$@" 2>&1 | tee -a "$log"
	local mrc=${PIPESTATUS[0]}
	echo "make_fixtures.py rc=$mrc ($((SECONDS - t0)) s): $(ls "$work/fixtures" 2>/dev/null | wc -l) folders" | tee -a "$log"
	[ "$mrc" -eq 0 ] || status=1
	# The DPO fixture is made on llama-tiny (and its adapter_init): again
	# whenever llama-tiny was
	if [ -d "$work/fixtures/llama-tiny" ]; then
		echo "== make_dpo_fixture.py" | tee -a "$log"
		PYTHONHASHSEED=0 PYTHONUNBUFFERED=1 timeout 120 python3 testdata/fixtures/make_dpo_fixture.py "$work/fixtures" 2>&1 | tee -a "$log"
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	fi

	local plog="$work/parity.log" test="$work/parity.test"
	: >"$plog"
	if [ "${MAKE_FIXTURES_NO_PARITY:-0}" = 1 ]; then
		echo "== parity not run here (MAKE_FIXTURES_NO_PARITY=1: the caller checks the folders)" | tee -a "$log"
	elif { [ -x .gpubench/parity.test ] && cp .gpubench/parity.test "$test"; } ||
		{ [ -f "$BIN/parity.test.xz" ] && python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$BIN/parity.test.xz" "$test" && chmod +x "$test"; }; then
		echo "== TestParity on them (and on the committed folders)" | tee -a "$log"
		(cd parity && FTUNE_FIXTURES="$work/fixtures" timeout 240 "$test" -test.run '^TestParity$' -test.v -test.count=1 -test.timeout=230s) >"$plog" 2>&1
		local prc=$?
		[ "$prc" -eq 0 ] || status=1
		summarize "$plog" "$work/quantities.txt" | tee -a "$log"
		cat "$work/quantities.txt" >>"$log"
		echo "TestParity rc=$prc ($((SECONDS - t0)) s)" | tee -a "$log"
		if command -v nvidia-smi >/dev/null 2>&1; then
			echo "== TestParityCUDA on them" | tee -a "$log"
			(cd parity && FTUNE_FIXTURES="$work/fixtures" timeout 150 "$test" -test.run '^TestParityCUDA$' -test.v -test.count=1 -test.timeout=140s) >>"$plog" 2>&1
			local crc=$?
			grep -E '^\s*--- (FAIL|SKIP)|relative error .* >|^(FAIL|panic)' "$plog" | grep -v 'fixture has no' | tail -40 | tee -a "$log"
			echo "TestParityCUDA rc=$crc ($((SECONDS - t0)) s)" | tee -a "$log"
			[ "$crc" -eq 0 ] || status=1
		fi
	else
		echo "== no .gpubench/parity.test or $BIN/parity.test.xz carried: parity is checked by 'scripts/make-fixtures.sh install' where Go is" | tee -a "$log"
	fi
	{
		echo "== full test log"
		cat "$plog"
	} >>"$log"

	if [ -d "$work/fixtures" ]; then
		rm -f "$OUT"/fixtures.tar.gz.*
		tar -C "$work" -czf - fixtures | split -b "$PART" -d - "$OUT/fixtures.tar.gz."
		ls -la "$OUT" | tee -a "$log"
	fi
	echo "make-fixtures device done in $((SECONDS - t0)) s, status $status" | tee -a "$log"
	rm -rf "$work"
	return $status
}

# summarize prints, from a verbose TestParity log, one line per fixture
# folder (quantities checked, skipped, the worst error as a fraction of its
# tolerance), writes every quantity's line to $2 when given, then prints
# every failure.
summarize() {
	awk -v detail="${2:-/dev/null}" '
		/^=== RUN   TestParity\/[^\/]+$/ { split($3, p, "/"); f = p[2]; if (!(f in n)) order[++k] = f; n[f] += 0 }
		/worst relative error|worst absolute loss error/ {
			line = $0; sub(/^[ \t]*[a-z_]+\.go:[0-9]+: /, "", line); printf "%-30s %s\n", f, line >detail
			tol = $NF; sub(/\)$/, "", tol); r = (tol > 0) ? $(NF - 2) / tol : 0
			n[f]++; if (!(f in w) || r > w[f]) { w[f] = r; wq[f] = line; sub(/ *[0-9.e+-]+ \(tolerance.*$/, "", wq[f]); sub(/^worst relative error /, "", wq[f]); if (wq[f] ~ /AdamW/) wq[f] = "adamw losses" }
		}
		/greedy generation: / { line = $0; sub(/^.*greedy generation: /, "", line); gen[f] = line; n[f]++ }
		/^[ \t]*--- (SKIP|FAIL): TestParity\/[^\/]+\/[^ ]+ / { split($3, p, "/"); if ($2 == "SKIP:") skip[p[2]]++; else fail[p[2]]++ }
		END {
			for (i = 1; i <= k; i++) { f = order[i]
				printf "%-30s %2d checked, %d skipped, %d failed; worst %.2g of tolerance (%s); generation %s\n", f, n[f], skip[f], fail[f], w[f], wq[f], (f in gen) ? gen[f] : "not checked"
			}
		}
	' "$1"
	grep -E 'relative error .* >|greedy tokens differ|step [0-9]+: loss|^(FAIL|panic)|Error|error:' "$1" | grep -v 'worst relative error' | head -40
}

install() {
	local dir=${1:-} replace=${2:-}
	[ -n "$dir" ] && ls "$dir"/fixtures.tar.gz.* >/dev/null 2>&1 || { echo "usage: $0 install DIR [--replace]   (DIR holds fixtures.tar.gz.00, ...)" >&2; return 2; }
	local tmp status=0 name
	tmp=$(mktemp -d)
	cat "$dir"/fixtures.tar.gz.* | tar -xzf - -C "$tmp" || { echo "cannot unpack $dir/fixtures.tar.gz.*" >&2; rm -rf "$tmp"; return 1; }
	for name in $(ls "$tmp/fixtures"); do
		local dst=testdata/fixtures/$name
		if [ -e "$dst" ]; then
			if diff -rq "$tmp/fixtures/$name" "$dst" >/dev/null; then
				echo "$name: identical to the committed folder"
				continue
			fi
			if [ "$replace" != --replace ]; then
				echo "$name: differs from the committed folder (kept; --replace takes the new one):"
				diff -rq "$tmp/fixtures/$name" "$dst" | head -5
				continue
			fi
			rm -rf "$dst"
		fi
		cp -r "$tmp/fixtures/$name" "$dst"
		echo "$name: installed"
	done
	rm -rf "$tmp"
	go test ./parity -run '^(TestParity|TestDPOParity)$' -count=1 -v >"${TMPDIR:-/tmp}/make-fixtures-parity.log" 2>&1 || status=1
	summarize "${TMPDIR:-/tmp}/make-fixtures-parity.log" "${TMPDIR:-/tmp}/make-fixtures-quantities.txt"
	echo "every quantity: ${TMPDIR:-/tmp}/make-fixtures-quantities.txt"
	echo "TestParity here: $([ $status -eq 0 ] && echo ok || echo FAILED) (full log ${TMPDIR:-/tmp}/make-fixtures-parity.log)"
	git status --short testdata/fixtures
	return $status
}

here() {
	local replace=""
	if [ "${1:-}" = --replace ]; then
		replace=--replace
		shift
	fi
	local out=.fixtures-out status=0
	local exclude
	exclude=$(git rev-parse --git-path info/exclude)
	mkdir -p "$(dirname "$exclude")"
	grep -qx "/$out/" "$exclude" 2>/dev/null || echo "/$out/" >>"$exclude"
	bash scripts/hf-root.sh run env OUT=/repo/$out bash scripts/make-fixtures.sh device "$@" || status=1
	install "$out" $replace || status=1
	echo "the generation log: $out/make-fixtures.log"
	return $status
}

case "${1:-}" in
build) build ;;
device) shift; device "$@" ;;
install) shift; install "$@" ;;
here) shift; here "$@" ;;
*) echo "usage: $0 build | device [NAME ...] | install DIR [--replace] | here [--replace] [NAME ...]" >&2; exit 2 ;;
esac
