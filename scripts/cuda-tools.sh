#!/bin/sh
# cuda-tools.sh: install Debian's CUDA toolkit (nvcc 11.8, ptxas) so that `make ptx`
# can regenerate kernels/cuda/*.ptx and `ptxas -v` can report registers and spills
# without a GPU. Debian ships the toolkit in the non-free component, so that
# component (and contrib, which it depends on) is added to the apt sources first.
# Idempotent: re-running it only re-checks. Needs root (apt).
set -eu

if command -v nvcc >/dev/null 2>&1; then
	echo "cuda-tools: $(nvcc --version | tail -n 1)"
	exit 0
fi

src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ]; then
	# deb822 format: extend every "Components: main" line.
	if ! grep -q 'non-free' "$src"; then
		sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$src"
	fi
elif [ -f /etc/apt/sources.list ]; then
	if ! grep -q 'non-free' /etc/apt/sources.list; then
		sed -i 's/^\(deb .* main\)$/\1 contrib non-free non-free-firmware/' /etc/apt/sources.list
	fi
else
	echo "cuda-tools: no apt sources found (looked for $src and /etc/apt/sources.list)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# The toolkit recommends the driver packages, which a build machine does not need.
apt-get install -y --no-install-recommends nvidia-cuda-toolkit
echo "cuda-tools: $(nvcc --version | tail -n 1)"
