#!/bin/bash
# hf-root.sh: run a command where Hugging Face transformers and PEFT run, on
# a development machine that has neither (Debian bookworm: no transformers
# package; PyPI is out of reach). Debian sid packages transformers, torch,
# accelerate and tokenizers (python3-transformers 5.12.1, python3-torch
# 2.14.1 on 2026-12-06), which bookworm cannot install without replacing its
# libc, so this builds a sid root once with debootstrap, installs them there,
# copies PEFT from a source checkout (Debian has no package; PEFT is pure
# Python) and runs the command in that root, in this repository
# (bind-mounted at /repo, the working directory).
#
#   [PEFT_SRC=<checkout of github.com/huggingface/peft>] scripts/hf-root.sh run CMD [ARG ...]
#
#   HF_ROOT   the root (default ~/.cache/ftune/hf-sid; about 2.5 GB)
#   PEFT_SRC  a checkout of huggingface/peft (it has src/peft), copied into
#             the root (the copy stays for later runs); its commit reaches
#             the command as PEFT_REV. Commands that use torch alone
#             (bench/cpu_lora.sh's PyTorch side) need none.
#
# Needs root (debootstrap, chroot, mount) and Debian's mirror. Used by
# scripts/make-fixtures.sh here and scripts/check-peft.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

root=${HF_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/ftune/hf-sid}
if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
shift
[ "$(id -u)" = 0 ] || { echo "hf-root: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
if [ -n "${PEFT_SRC:-}" ] && [ ! -f "$PEFT_SRC/src/peft/__init__.py" ]; then
	echo "hf-root: PEFT_SRC=$PEFT_SRC is not a checkout of github.com/huggingface/peft (no src/peft)" >&2
	exit 2
fi

# libopenblas0-pthread: sid's torch calls whatever libblas.so.3 the
# alternatives point to (BLAS_INFO=generic), in a bare root the reference
# BLAS, 7x slower than OpenBLAS on the CPU benchmark's float32 step
if [ ! -x "$root/usr/bin/python3" ] || [ ! -e "$root/usr/lib/x86_64-linux-gnu/openblas-pthread" ] ||
	! chroot "$root" python3 -c 'import transformers, torch, accelerate' 2>/dev/null; then
	command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap || exit 1
	[ -x "$root/usr/bin/apt-get" ] || debootstrap --variant=minbase sid "$root" http://deb.debian.org/debian || exit 1
	# a mirror snapshot's Release file may be past its Valid-Until date
	echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99ftune-snapshot"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	chroot "$root" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q &&
		apt-get install -y -q --no-install-recommends python3-transformers python3-torch python3-accelerate \
			python3-safetensors python3-tokenizers python3-huggingface-hub python3-numpy python3-packaging \
			python3-psutil python3-yaml python3-tqdm libopenblas0-pthread' || exit 1
fi
# PEFT from PEFT_SRC, else the copy a previous run left; without either,
# a command that imports peft fails there (torch and transformers need none)
peft_rev=$(cat "$root/opt/peft/REV" 2>/dev/null || echo "none")
if [ -n "${PEFT_SRC:-}" ]; then
	rm -rf "$root/opt/peft" && mkdir -p "$root/opt/peft" && cp -r "$PEFT_SRC/src" "$root/opt/peft/" || exit 1
	peft_rev=$(git -C "$PEFT_SRC" rev-parse HEAD 2>/dev/null || echo "not a git checkout")
	echo "$peft_rev" >"$root/opt/peft/REV"
fi

mkdir -p "$root/repo" "$root/proc"
mountpoint -q "$root/repo" && umount "$root/repo"
mount --bind "$PWD" "$root/repo" || exit 1
mounted_proc=0
if ! mountpoint -q "$root/proc"; then
	mount -t proc proc "$root/proc" && mounted_proc=1
fi
trap 'umount "$root/repo"; [ $mounted_proc = 0 ] || umount "$root/proc"' EXIT
chroot "$root" env PYTHONPATH=/opt/peft/src PEFT_REV="$peft_rev" PYTHONHASHSEED=0 \
	bash -c 'cd /repo && exec "$@"' hf-root "$@"
