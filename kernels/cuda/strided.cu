// strided.cu: elementwise kernels over strided, broadcast views (the tensor
// backend's Copy, Fill, Binary, Unary and Reduce), and id checking.
//
// Every operand is a view: a base pointer (offset already applied) and one
// stride per axis, in elements; a broadcast axis has stride 0. The host
// merges axes that are contiguous in every operand and drops size-1 axes, so
// rank <= 6 here and a dense tensor arrives as rank 1. Element i of the
// output (row-major over sizes) is found by peeling i into coordinates from
// the innermost axis: off_op = sum_k c_k * stride_op[k].
//
//   convert_strided_fwd_<dst>(src code): dst[i] = convert(src[i])   (=)
//       any of f32, bf16, f64, i32, i64 to any; floats to ints truncate
//       toward zero and f64 -> bf16 rounds through f32, as Go's conversions
//       in the CPU backend do; int -> int is exact.
//   fill_strided_fwd_<dst>: dst[i] = v                               (=)
//   binary_bcast_fwd_<t>: dst[i] = a[i] op b[i]                      (=)
//   unary_strided_fwd_<t>: dst[i] = f(a[i]; arg)                     (=)
//   reduce_strided_fwd_<t>: dst[j] = sum/mean/max over the reduced axis (=)
//   index_i32_fwd_<i32|i64>: ids to int32 with a range check
//
// Arithmetic is in double, then rounded once to the storage type: for + - *
// / this is the correctly rounded float32 result (double has more than
// 2*24+2 bits), and the transcendental ops match the CPU backend, which
// evaluates them in float64 too. Reductions accumulate in double. These are
// memory-bound, so double arithmetic costs little on the GPUs ftune targets.
// Grid-stride loops, 256 threads per block.
#include "common.cuh"

#define MAXR 6
#define DIMS long long n0, long long n1, long long n2, long long n3, long long n4, long long n5
#define STRIDES(p) long long p##0, long long p##1, long long p##2, long long p##3, long long p##4, long long p##5
#define ARR(p) {p##0, p##1, p##2, p##3, p##4, p##5}

// Codes of the storage types, as kernels/cuda's DType numbers them.
enum { C_F32 = 0, C_BF16 = 1, C_F64 = 2, C_I32 = 3, C_I64 = 4 };

__device__ __forceinline__ double ld_f(const void* p, int code, long long i) {
    switch (code) {
    case C_F32: return ((const float*)p)[i];
    case C_BF16: return __bfloat162float(((const bf16*)p)[i]);
    case C_F64: return ((const double*)p)[i];
    case C_I32: return ((const int*)p)[i];
    default: return (double)((const long long*)p)[i];
    }
}

__device__ __forceinline__ long long ld_i(const void* p, int code, long long i) {
    switch (code) {
    case C_I32: return ((const int*)p)[i];
    case C_I64: return ((const long long*)p)[i];
    default: return (long long)ld_f(p, code, i);
    }
}

template <typename T> __device__ __forceinline__ T cvt(double v);
template <> __device__ __forceinline__ float cvt<float>(double v) { return (float)v; }
template <> __device__ __forceinline__ double cvt<double>(double v) { return v; }
template <> __device__ __forceinline__ bf16 cvt<bf16>(double v) { return __float2bfloat16_rn((float)v); }
template <> __device__ __forceinline__ int cvt<int>(double v) { return (int)v; }
template <> __device__ __forceinline__ long long cvt<long long>(double v) { return (long long)v; }

__device__ __forceinline__ double val(float x) { return x; }
__device__ __forceinline__ double val(double x) { return x; }
__device__ __forceinline__ double val(bf16 x) { return __bfloat162float(x); }

// offsets peels linear index i into coordinates over the last `rank` of the
// MAXR axes and returns the element offsets of up to three operands.
__device__ __forceinline__ void offsets(long long i, int rank, const long long* n, const long long* s0,
                                        const long long* s1, const long long* s2, long long& o0, long long& o1,
                                        long long& o2) {
    o0 = o1 = o2 = 0;
#pragma unroll
    for (int k = MAXR - 1; k >= 0; k--) {
        if (k < MAXR - rank) break;
        long long c = i % n[k];
        i /= n[k];
        o0 += c * s0[k];
        o1 += c * s1[k];
        o2 += c * s2[k];
    }
}

#define GRID_LOOP(i, total) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); i += (long long)gridDim.x * blockDim.x)

template <typename D>
__device__ void convert(D* dst, const void* src, int scode, long long total, int rank, const long long* n,
                        const long long* sd, const long long* ss, bool intDst) {
    GRID_LOOP(i, total) {
        long long od, os, unused;
        offsets(i, rank, n, sd, ss, ss, od, os, unused);
        if (intDst) dst[od] = (D)ld_i(src, scode, os);
        else dst[od] = cvt<D>(ld_f(src, scode, os));
    }
}

#define CONVERT(name, D, isInt)                                                                               \
    extern "C" __global__ void convert_strided_fwd_##name(D* dst, const void* src, int scode, long long total, \
                                                          int rank, DIMS, STRIDES(d), STRIDES(s)) {            \
        const long long n[MAXR] = ARR(n), sd[MAXR] = ARR(d), ss[MAXR] = ARR(s);                               \
        convert<D>(dst, src, scode, total, rank, n, sd, ss, isInt);                                            \
    }                                                                                                          \
    extern "C" __global__ void fill_strided_fwd_##name(D* dst, double v, long long total, int rank, DIMS,      \
                                                       STRIDES(d)) {                                           \
        const long long n[MAXR] = ARR(n), sd[MAXR] = ARR(d);                                                   \
        const D x = cvt<D>(v);                                                                                 \
        GRID_LOOP(i, total) {                                                                                  \
            long long od, u1, u2;                                                                              \
            offsets(i, rank, n, sd, sd, sd, od, u1, u2);                                                       \
            dst[od] = x;                                                                                       \
        }                                                                                                      \
    }
CONVERT(f32, float, false)
CONVERT(bf16, bf16, false)
CONVERT(f64, double, false)
CONVERT(i32, int, true)
CONVERT(i64, long long, true)

// Binary ops, numbered as tensor.BinaryOp: add, sub, mul, div, max, eq.
// max returns a when a is NaN or a > b, else b (the CPU backend's rule).
__device__ __forceinline__ double binop(int op, double x, double y) {
    switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return (x != x || x > y) ? x : y;
    default: return x == y ? 1.0 : 0.0;
    }
}

// Unary ops, numbered as tensor.UnaryOp. arg has already been rounded to
// the storage type by the caller where the CPU rounds it (scale, addc).
__device__ __forceinline__ double unop(int op, double x, double arg) {
    switch (op) {
    case 0: return -x;
    case 1: return exp(x);
    case 2: return log(x);
    case 3: return x / (1.0 + exp(-x));
    case 4: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }
    case 5: return sqrt(x);
    case 6: return 1.0 / x;
    case 7: return arg * x;
    case 8: return x + arg;
    case 9: return pow(x, arg);
    case 10: return 1.0 / (1.0 + exp(-x));
    case 11: return tanh(x);
    case 12: return x * x;
    case 13: return fabs(x);
    // cos and sin through cospi/sinpi of x/pi: the double cos/sin carry a
    // Payne-Hanek reduction with a 48-byte local array for huge arguments
    // (local memory, which TestModuleErrorLog forbids). Rounding x/pi adds an
    // absolute error of ~|x|·1e-16 to the result, invisible in float32 for
    // any angle RoPE uses.
    case 14: return cospi(x * 0.318309886183790671538);
    default: return sinpi(x * 0.318309886183790671538);
    }
}

// The CPU's silu is x·σ(x) with σ = 1/(1+e^−x); x/(1+e^−x) is the same
// value up to one rounding of double, far below float32's.

#define ELEMENTWISE(name, T)                                                                                  \
    extern "C" __global__ void binary_bcast_fwd_##name(int op, T* dst, const T* a, const T* b, long long total, \
                                                       int rank, DIMS, STRIDES(d), STRIDES(a), STRIDES(b)) {    \
        const long long n[MAXR] = ARR(n), sd[MAXR] = ARR(d), sa[MAXR] = ARR(a), sb[MAXR] = ARR(b);             \
        GRID_LOOP(i, total) {                                                                                  \
            long long od, oa, ob;                                                                              \
            offsets(i, rank, n, sd, sa, sb, od, oa, ob);                                                       \
            dst[od] = cvt<T>(binop(op, val(a[oa]), val(b[ob])));                                               \
        }                                                                                                      \
    }                                                                                                          \
    extern "C" __global__ void unary_strided_fwd_##name(int op, double arg, T* dst, const T* a, long long total, \
                                                        int rank, DIMS, STRIDES(d), STRIDES(a)) {              \
        const long long n[MAXR] = ARR(n), sd[MAXR] = ARR(d), sa[MAXR] = ARR(a);                                \
        GRID_LOOP(i, total) {                                                                                  \
            long long od, oa, u;                                                                               \
            offsets(i, rank, n, sd, sa, sa, od, oa, u);                                                        \
            dst[od] = cvt<T>(unop(op, val(a[oa]), arg));                                                       \
        }                                                                                                      \
    }                                                                                                          \
    /* op: 0 sum, 1 mean, 2 max (NaN wins; an empty max is NaN). One thread per output element, walking  */  \
    /* the reduced axis (len m, stride sm) from the output's position in a.                                */  \
    extern "C" __global__ void reduce_strided_fwd_##name(int op, T* dst, const T* a, long long total, int m,  \
                                                         long long sm, int rank, DIMS, STRIDES(d), STRIDES(a)) { \
        const long long n[MAXR] = ARR(n), sd[MAXR] = ARR(d), sa[MAXR] = ARR(a);                                \
        GRID_LOOP(i, total) {                                                                                  \
            long long od, oa, u;                                                                               \
            offsets(i, rank, n, sd, sa, sa, od, oa, u);                                                        \
            double acc = op == 2 ? (m == 0 ? nan("") : -INFINITY) : 0.0;                                        \
            for (int j = 0; j < m; j++) {                                                                      \
                double v = val(a[oa + j * sm]);                                                                \
                if (op == 2) {                                                                                 \
                    if (v > acc || v != v) acc = v;                                                            \
                } else {                                                                                       \
                    acc += v;                                                                                  \
                }                                                                                              \
            }                                                                                                  \
            if (op == 1) acc /= (double)m;                                                                     \
            dst[od] = cvt<T>(acc);                                                                             \
        }                                                                                                      \
    }
ELEMENTWISE(f32, float)
ELEMENTWISE(bf16, bf16)
ELEMENTWISE(f64, double)

// index_i32_fwd_<src>: out[i] = ids[i] as int32 for kernels that index with
// int32. An id equal to `ignore` (when hasIgnore) becomes `ignoreTo`; any
// other id outside [0, V) records the smallest such position in *bad (which
// the caller sets to INT_MAX first) so the host can report it.
template <typename S>
__device__ void index_i32(int* out, const S* ids, long long total, long long V, long long ignore, int hasIgnore,
                          int ignoreTo, int* bad) {
    GRID_LOOP(i, total) {
        long long v = (long long)ids[i];
        if (hasIgnore && v == ignore) {
            out[i] = ignoreTo;
            continue;
        }
        if (v < 0 || v >= V) {
            atomicMin(bad, (int)min(i, (long long)0x7ffffffe));
            out[i] = ignoreTo;
            continue;
        }
        out[i] = (int)v;
    }
}

extern "C" __global__ void index_i32_fwd_i32(int* out, const int* ids, long long total, long long V, long long ignore,
                                             int hasIgnore, int ignoreTo, int* bad) {
    index_i32<int>(out, ids, total, V, ignore, hasIgnore, ignoreTo, bad);
}
extern "C" __global__ void index_i32_fwd_i64(int* out, const long long* ids, long long total, long long V,
                                             long long ignore, int hasIgnore, int ignoreTo, int* bad) {
    index_i32<long long>(out, ids, total, V, ignore, hasIgnore, ignoreTo, bad);
}
