#!/usr/bin/python3
"""OpenBLAS sgemm on the shapes of BenchmarkSgemm (kernels/asm), for
bench/README.md's comparison table.

Usage (Debian's numpy, which calls the system libblas.so.3; install with
apt-get install -y python3-numpy libopenblas0-pthread):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/sgemm_openblas.py --threads 1

The thread count must be fixed before numpy loads OpenBLAS, so this script
sets OPENBLAS_NUM_THREADS itself and then imports numpy. It prints which
BLAS library is really loaded and, for OpenBLAS, its build config and the
core type whose kernels run, then one line per shape in the layout of
`go test -bench` (best and median of several timed runs).
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

SHAPES = [  # M, K, N: C (M×N) = A (M×K) @ B (K×N)
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (4096, 2048, 2048),
    (4096, 2048, 8192),
]


def loaded_blas():
    """Path of the BLAS shared library mapped into this process."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if ".so" in line}
    for p in sorted(paths):
        base = os.path.basename(p)
        if "blas" in base and "cblas" not in base:
            return p
    return None


def describe(path):
    print(f"blas library: {path} (real: {os.path.realpath(path)})")
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        print("openblas config:", lib.openblas_get_config().decode())
        print("openblas core:  ", lib.openblas_get_corename().decode())
        print("openblas threads:", lib.openblas_get_num_threads())
    except (OSError, AttributeError) as e:
        print("not OpenBLAS or no introspection:", e)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"):
        print(f"{var}={os.environ.get(var, '(unset)')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per shape")
    ap.add_argument("--shapes", default="", help="comma list of MxKxN (default: all)")
    args = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np  # after OPENBLAS_NUM_THREADS is set

    print("numpy", np.__version__, "python", sys.version.split()[0])
    describe(loaded_blas() or "(none found)")
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    rng = np.random.default_rng(1)
    for m, k, n in shapes:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)  # warm: threads started, pages touched
        times, cpus = [], []
        start = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < args.min_time:
            t0, c0 = time.perf_counter(), time.process_time()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        gflop = 2.0 * m * n * k / 1e9
        best, med = min(times), statistics.median(times)
        # GFLOP per CPU-second of all threads: what the code does per core,
        # unaffected by time slices lost to other processes on shared cores.
        print(f"OpenBLAS/{m}x{k}x{n}/threads={args.threads}\t{len(times)}\t{med * 1e9:.0f} ns/op"
              f"\t{gflop / med:.2f} GFLOP/s\t{gflop / statistics.median(cpus):.2f} GFLOP/cpu-s"
              f"\t(best {gflop / best:.2f} GFLOP/s)")


if __name__ == "__main__":
    main()
