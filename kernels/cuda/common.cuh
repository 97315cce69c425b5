// common.cuh: helpers shared by ftune's kernels (included by every .cu; its
// sha256 is recorded in each .ptx header beside the .cu's own).
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

// Loads and stores that convert between the storage type and float, so a
// kernel is written once as a template over float / bf16 storage.
__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
// Round to nearest even, like the Go reference (and PyTorch).
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block_sum: every thread gets the sum over the block. blockDim.x must be a
// multiple of 32 and at most 1024; scratch holds 32 floats. It ends with a
// barrier, so scratch may be reused by the next call.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) scratch[w] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : -INFINITY;
    v = warp_max(v);
    __syncthreads();
    return v;
}

// Tensor-core and shared-memory primitives of the sm_80 kernels (gemm.cu,
// flash_attention.cu): cp.async copies, ldmatrix and mma.sync
// m16n8k16 bf16 -> f32. Fragment layouts are the PTX ISA's.
typedef unsigned short u16;

__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return (unsigned)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(p)));
}

// mma_bf16: c += a b for one m16n8k16 tile (a: 4 registers of bf16 pairs,
// b: 2).
__device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, const unsigned* b) { mma_bf16(c, a, b[0], b[1]); }

// LoRA dropout's counter-based stream (kernels/dropout, dropout.cu's
// header): draw g of the stream keyed by key. Element i of a mask at
// stream position pos is decided by bits 16(i%4).. of draw pos + i/4.
__device__ __forceinline__ unsigned long long splitmix64_draw(unsigned long long key, unsigned long long g) {
    unsigned long long z = key + (g + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// DropoutCursor decides elements of the mask at (key, pos), keeping the
// last draw: element i is keep where bits 16(i%4).. of draw pos + i/4 are
// at least drop, else 0 (dropout.cu's dropout_lanes, one element at a
// time). Elements visited in order cost one draw per four, not one each.
struct DropoutCursor {
    unsigned long long key, pos, g, r;
    unsigned int drop;
    float keep;
};

__device__ __forceinline__ DropoutCursor dropout_cursor(unsigned long long key, unsigned long long pos,
                                                         unsigned int drop, float keep) {
    return DropoutCursor{key, pos, ~0ull, 0ull, drop, keep};
}

__device__ __forceinline__ float dropout_at(DropoutCursor& c, long long i) {
    const unsigned long long g = (unsigned long long)(i >> 2);
    if (g != c.g) {
        c.g = g;
        c.r = splitmix64_draw(c.key, c.pos + g);
    }
    return (unsigned int)((c.r >> (16 * (i & 3))) & 0xffffull) >= c.drop ? c.keep : 0.f;
}

// LowRank is the second operand pair of the fused LoRA GEMMs (gemm.cu's
// and gemm_sm90.cu's _lr kernels): op(A2) [M,K2] and op(B2) [K2,N] with
// the first pair's transposes, their product scaled by scale before the
// first pair's is added. K == 0 (the plain kernels) adds nothing. With
// dropout (the nn entries: LoRA dropout's backward, dx = dy·W + mask ⊙
// (dh·A)), element (row, col) of the low-rank product is also multiplied
// by element row·ldm + col of the mask at (key, pos) (dropout_at), before
// the scale. gemm.cu's masked-operand kernels (dropa, dropb) use the
// dropout fields alone.
struct LowRank {
    const u16* A;
    const u16* B;
    int K, lda, ldb;
    float scale;
    int dropout;
    unsigned long long key, pos;
    unsigned int drop;
    float keep;
    long long ldm;
};

// LR_ARGS are a fused LoRA entry's arguments after the plain ones: the
// low-rank pair A2 [M,K2] (lda2), B2 (ldb2: [N,K2] for nt, [K2,N] for nn),
// its scale, and LoRA dropout's mask (nn only): on (0 or 1), key, pos,
// drop threshold, keep value and the mask's row length. LR_PAIR is them
// as a LowRank.
#define LR_ARGS const u16 *A2, const u16 *B2, int K2, int lda2, int ldb2, float scale2, int mask_on, \
                unsigned long long mask_key, unsigned long long mask_pos, unsigned int mask_drop, float mask_keep, \
                long long mask_ld
#define LR_PAIR LowRank{A2, B2, K2, lda2, ldb2, scale2, mask_on, mask_key, mask_pos, mask_drop, mask_keep, mask_ld}

// ---- NF4 (QLoRA) weights ---------------------------------------------------

// nf4_codes fills code[16] (shared memory; threads 0-15, one value each)
// with bitsandbytes' NF4 table (quantiles of N(0,1) normalised to [-1, 1],
// with an exact 0). From immediates: a __constant__ table would be emitted
// into every module that includes this header. The caller synchronises.
__device__ __forceinline__ void nf4_codes(float* code) {
    if (threadIdx.x >= 16) return;
    float v;
    switch (threadIdx.x) {
    case 0: v = -1.0f; break;
    case 1: v = -0.6961928009986877f; break;
    case 2: v = -0.5250730514526367f; break;
    case 3: v = -0.39491748809814453f; break;
    case 4: v = -0.28444138169288635f; break;
    case 5: v = -0.18477343022823334f; break;
    case 6: v = -0.09105003625154495f; break;
    case 7: v = 0.0f; break;
    case 8: v = 0.07958029955625534f; break;
    case 9: v = 0.16093020141124725f; break;
    case 10: v = 0.24611230194568634f; break;
    case 11: v = 0.33791524171829224f; break;
    case 12: v = 0.44070982933044434f; break;
    case 13: v = 0.5626170039176941f; break;
    case 14: v = 0.7229568362236023f; break;
    default: v = 1.0f; break;
    }
    code[threadIdx.x] = v;
}

// NF4 weight operand of the GEMMs (gemm.cu's NF4 kernels, gemm_sm90.cu's).
// Without double quantization a block's scale is absmax[b]; with it (DQ),
// bitsandbytes' compress_statistics: dyn[qabsmax[b]] * nested[b /
// nestedBlocksize] + offset, each step rounded to float32 (dynmap is the
// 256-entry map, read through the read-only cache: staging its 1 KB in
// shared memory would drop the sm_80 nt variant to one block per SM on an
// A100, 2 x 82 KB > 164 KB).
struct NF4Weight {
    const unsigned char* packed;
    const float* absmax;
    int blocksize;
    const unsigned char* qabsmax;
    const float* nested;
    const float* dynmap;
    float offset;
    int nestedBlocksize;
};

// nf4_dq_scale is block b's double-quantized scale, given its 8-bit code's
// value in dynmap (read through the read-only cache by nf4_scale, from a
// copy in shared memory by nf4.cu).
__device__ __forceinline__ float nf4_dq_scale(const NF4Weight& w, float code, long long b) {
    return __fadd_rn(__fmul_rn(code, w.nested[b / w.nestedBlocksize]), w.offset);
}

// nf4_scale returns block b's float32 scale. The DQ product and sum are
// separate roundings (no fma), as bitsandbytes' dequantize_blockwise then
// "+ offset", so the result is bit-identical to the host's BlockAbsmax.
template <bool DQ>
__device__ __forceinline__ float nf4_scale(const NF4Weight& w, long long b) {
    if (!DQ) return w.absmax[b];
    return nf4_dq_scale(w, __ldg(w.dynmap + w.qabsmax[b]), b);
}

__device__ __forceinline__ u16 bf16_bits(float v) {
    bf16 h = __float2bfloat16_rn(v);
    return *reinterpret_cast<u16*>(&h);
}

// nf4_tile dequantizes rows [row0, row0+ROWS) x cols [col0, col0+COLS) of
// the whole NF4 weight [rowLim, K] (row length K, no padding), 8 columns
// at a time: put(r, c, v) receives tile row r's chunk c (columns 8c..8c+7)
// as 8 bf16 (code·scale in float32, rounded to nearest even), zero outside
// the matrix; each of the block's NTHREADS threads takes every NTHREADS-th
// chunk. Groups of 8 starting at a flattened index that is a multiple of 8
// read 4 aligned packed bytes and one scale when K and blocksize are
// multiples of 8; others go element by element. code is the table in
// shared memory (a __constant__ table serialises on differing indices).
template <int ROWS, int COLS, int NTHREADS, bool DQ, typename Put>
__device__ __forceinline__ void nf4_tile(const NF4Weight& w, const float* code, int row0, int col0, int rowLim, int K,
                                         Put put) {
    constexpr int CPR = COLS / 8;
    const bool vec = (K & 7) == 0 && (w.blocksize & 7) == 0 && (((uintptr_t)w.packed) & 3) == 0;
#pragma unroll
    for (int i = threadIdx.x; i < ROWS * CPR; i += NTHREADS) {
        const int r = i / CPR, c = i % CPR;
        const int gr = row0 + r, gc = col0 + 8 * c;
        const long long e0 = (long long)gr * K + gc;
        unsigned o[4];
        if (vec && gr < rowLim && gc + 8 <= K) {
            const unsigned q = *reinterpret_cast<const unsigned*>(w.packed + e0 / 2);
            const float a = nf4_scale<DQ>(w, e0 / w.blocksize);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const unsigned byte = (q >> (8 * k)) & 255u;
                o[k] = (unsigned)bf16_bits(code[byte >> 4] * a) | ((unsigned)bf16_bits(code[byte & 15u] * a) << 16);
            }
        } else {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                unsigned pair = 0;
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int e = 2 * k + h;
                    if (gr < rowLim && gc + e < K) {
                        const long long f = e0 + e;
                        const unsigned byte = w.packed[f >> 1];
                        const unsigned q = (f & 1) ? (byte & 15u) : (byte >> 4);
                        pair |= (unsigned)bf16_bits(code[q] * nf4_scale<DQ>(w, f / w.blocksize)) << (16 * h);
                    }
                }
                o[k] = pair;
            }
        }
        put(r, c, make_uint4(o[0], o[1], o[2], o[3]));
    }
}
