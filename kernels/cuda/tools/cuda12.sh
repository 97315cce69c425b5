#!/bin/sh
# cuda12.sh: unpack Debian trixie's nvidia-cuda-toolkit 12.4 (ptxas, nvdisasm,
# cuobjdump) into a folder, without installing it, so that ptxas-report.sh can
# assemble the committed PTX for sm_90a (wgmma needs ptxas >= 12.0; Debian
# bookworm's toolkit is 11.8). A full install would pull trixie's libc onto a
# bookworm machine, so the .deb is fetched with a private apt configuration
# (its own sources list, lists and cache under $CUDA12_DIR/apt: the machine's
# apt state is not touched) and unpacked with dpkg -x. ptxas 12.4 links only
# libc, libm and libpthread, so it runs on bookworm.
#
#   CUDA12_DIR   where to unpack (default ${XDG_CACHE_HOME:-$HOME/.cache}/ftune/cuda12);
#                ptxas ends up at $CUDA12_DIR/usr/bin/ptxas
#
# Idempotent: with ptxas already unpacked it only prints its version. Needs
# apt-get and dpkg (Debian or Ubuntu) and network access to Debian's mirror;
# no root needed beyond what apt-get download needs to write the folder.
set -eu
dir=${CUDA12_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ftune/cuda12}
ptxas=$dir/usr/bin/ptxas
if [ -x "$ptxas" ]; then
	"$ptxas" --version | tail -n 2 | head -n 1
	exit 0
fi
for tool in apt-get dpkg; do
	command -v "$tool" >/dev/null 2>&1 || { echo "cuda12: $tool not found (a Debian or Ubuntu machine is needed)" >&2; exit 1; }
done
apt=$dir/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
: >"$apt/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main contrib non-free" >"$apt/sources.list"
set -- -o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=- \
	-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" \
	-o Dir::State::status="$apt/status" -o APT::Architecture=amd64
apt-get "$@" update
(cd "$apt/debs" && apt-get "$@" download nvidia-cuda-toolkit)
deb=$(ls "$apt"/debs/nvidia-cuda-toolkit_*_amd64.deb | tail -n 1)
dpkg -x "$deb" "$dir"
[ -x "$ptxas" ] || { echo "cuda12: $deb has no usr/bin/ptxas" >&2; exit 1; }
echo "cuda12: $("$ptxas" --version | tail -n 2 | head -n 1) at $ptxas (from $(basename "$deb"))"
