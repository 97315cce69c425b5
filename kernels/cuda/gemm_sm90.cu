// gemm_sm90.cu: the bf16 tensor-core products on Hopper's warpgroup MMA
// (wgmma, PTX ISA 8.0, target sm_90a: compute capability 9.0 only; the
// launcher loads this module on such a GPU alone).
//
//   matmul_nt_wgmma_fwd_bf16:        C[M,N] = alpha * A[M,K] * B[N,K]^T + beta * C, f32 C
//   matmul_nt_wgmma_cbf16_fwd_bf16:  the same with C stored as bf16 (rounded once)
//   matmul_nn_wgmma{,_cbf16}_fwd_bf16: the same with B stored [K,N]
//       (C = alpha * A * B + beta * C: the backward's dx = dy·W)
//   matmul_{nt,nn}_wgmma_lr_cbf16_fwd_bf16: a LoRA layer's two products in
//       one kernel, C = alpha * (A * op(B) + scale2 * A2[M,K2] * op(B2)) +
//       beta * C, bf16 C (gemm.cu's matmul_{nt,nn}_lr_cbf16 on wgmma: the
//       rank's k-tiles run first through the same ring into the same
//       accumulators, which are masked (nn: LoRA dropout's mask, drawn in
//       the kernel) and scaled once every wgmma writing them has retired;
//       then the base product's tiles; C written and rounded once)
//   matmul_{nt,nn}_wgmma_nf4[dq]{,_cbf16,_lr_cbf16}_fwd_bf16: the same with
//       B the whole NF4 weight (QLoRA), dequantized into the tiles
//   matmul_{nt,nn}_wgmma_tma{,_cbf16,_lr_cbf16}_fwd_bf16 and
//   matmul_{nt,nn}_wgmma_ws{,_cbf16,_lr_cbf16}_fwd_bf16: the bf16 products
//       with TMA loads, by one block of 256 threads or warp-specialised
//       (the TMA and warp-specialised sections below)
//
// The nt product is the forward y = x W^T of every Linear layer, the nn
// one its input gradient. Contract (the launcher checks it; other products
// run gemm.cu's sm_80 kernels): K, lda and ldb (and the low-rank pair's
// K2, lda2, ldb2) multiples of 8, for nn N too, and A, B (A2, B2) 16-byte
// aligned, so that every 16-byte chunk of a row is one cp.async (a chunk
// past M, N or K is zero-filled). beta == 0 never reads C.
//
// Block tile 128x128x64, 256 threads: two warpgroups, each owning 64 rows
// of the tile and all 128 columns (wgmma m64n128k16, 64 float accumulators
// a thread, f32 accumulation). Tiles reach shared memory through cp.async
// in a 128-byte swizzled layout wgmma reads, 16 KB a tile, 1024-byte
// aligned atoms of 8 rows x 128 bytes with 16-byte chunk c of an atom's row
// r at r*128 + 16*(c ^ r)):
//   - K-major (A; nt's B): tile row r (of M or N), k 8c..8c+7 at
//     (r/8)*1024 + (r%8)*128 + 16*(c ^ r%8); a row is 64 k = 128 bytes. The
//     descriptor of k-step s (16 wide) starts 32*s bytes in; stride byte
//     offset 1024 (the next 8 rows).
//   - MN-major (nn's B, stored [K,N]: wgmma's imm-trans-b 1): k-row k of
//     the tile, columns 64h + 8c..+7 at (k/8)*2048 + h*1024 + (k%8)*128 +
//     16*(c ^ k%8): atoms of 8 k-rows x 64 columns, the two column halves
//     1024 bytes apart (leading byte offset), groups of 8 k 2048 apart
//     (stride byte offset); k-step s starts 4096*s bytes in.
// A ring of 4 stages (128 KB, plus 1 KB to align the ring).
//
// Pipeline per k-tile kt (prefetch distance 2, one wgmma group in flight):
// wait for tile kt's copies, fence.proxy.async (cp.async writes through the
// generic proxy, wgmma reads through the async one), barrier; four wgmma
// on stage kt, commit; issue the copies of tile kt+2 into the stage tile
// kt-2 used (its wgmmas were retired by every warpgroup before the
// barrier); wait until one group is left in flight.
#include "common.cuh"

#define WG_BM 128
#define WG_BN 128
#define WG_BK 64
#define WG_STAGES 4
#define WG_TILE (128 * 64 * 2)  // bytes of one A or B tile

// The 64-bit matrix descriptor of a 128-byte swizzled operand at shared
// address a: start address >> 4, leading byte offset (bits 16-29, >> 4),
// stride byte offset (bits 32-45, >> 4), swizzle mode 1 (128 bytes).
// K-major: leading 1 (unused by this layout), stride 1024 (the next 8
// rows). MN-major: leading 1024 (the next 64 columns), stride 2048 (the
// next 8 k-rows).
__device__ __forceinline__ unsigned long long wg_desc(unsigned a) {
    return (unsigned long long)((a & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ unsigned long long wg_desc_mn(unsigned a) {
    return (unsigned long long)((a & 0x3FFFF) >> 4) | ((unsigned long long)(1024 >> 4) << 16) |
           ((unsigned long long)(2048 >> 4) << 32) | (1ull << 62);
}

// The MN-major descriptor of the TMA kernels' layout (the TMA section): leading byte
// offset 8192 (the second 64 columns), stride 1024 (the next 8 k-rows).
__device__ __forceinline__ unsigned long long wg_desc_mn_tma(unsigned a) {
    return (unsigned long long)((a & 0x3FFFF) >> 4) | ((unsigned long long)(8192 >> 4) << 16) |
           ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}

// wg_load copies rows [row0, row0+128) x k [k0, k0+64) of a row-major
// [rows, K] bf16 matrix (leading dimension ld) into the K-major swizzled
// tile at shared address s; chunks outside the matrix are zero-filled.
__device__ __forceinline__ void wg_load(unsigned s, const u16* g, int ld, int row0, int k0, int rows, int K) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int j = threadIdx.x + 256 * i;  // chunk: 128 rows x 8 chunks
        const int r = j >> 3, c = j & 7;
        const int gr = row0 + r, gk = k0 + 8 * c;
        const bool in = gr < rows && gk < K;
        const u16* src = in ? g + (size_t)gr * ld + gk : g;
        const unsigned dst = s + (r >> 3) * 1024 + (r & 7) * 128 + ((c ^ (r & 7)) << 4);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(in ? 16 : 0));
    }
}

// wg_load_mn copies k-rows [k0, k0+64) x columns [col0, col0+128) of a
// row-major [K, N] bf16 matrix (leading dimension ld) into the MN-major
// swizzled tile at shared address s; chunks outside are zero-filled (N a
// multiple of 8: a chunk is in or out whole).
__device__ __forceinline__ void wg_load_mn(unsigned s, const u16* g, int ld, int k0, int col0, int K, int N) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int j = threadIdx.x + 256 * i;  // chunk: 64 k-rows x 16 chunks
        const int k = j >> 4, cc = j & 15, h = cc >> 3, c = cc & 7;
        const int gk = k0 + k, gn = col0 + 8 * cc;
        const bool in = gk < K && gn < N;
        const u16* src = in ? g + (size_t)gk * ld + gn : g;
        const unsigned dst = s + (k >> 3) * 2048 + h * 1024 + (k & 7) * 128 + ((c ^ (k & 7)) << 4);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(in ? 16 : 0));
    }
}

// wg_mma: one wgmma m64n128k16 (d += A·op(B) over 16 k) on descriptors da,
// db; TB 0 for a K-major B (nt), 1 for an MN-major one (nn: imm-trans-b).
template <int TB>
__device__ __forceinline__ void wg_mma(float* d, unsigned long long da, unsigned long long db) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 1, 1, 1, 0, %66;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "n"(TB));
}

// wg_mma_tile issues and commits the 4 wgmma of one 64-deep k-tile: A at
// shared address a (K-major), B at b, K-major for the nt product (TB) and
// MN-major for nn, its groups of 8 k 2048 bytes apart in the cp.async
// kernels' layout and 1024 in the TMA ones' (tma).
template <bool TB, bool tma = false>
__device__ __forceinline__ void wg_mma_tile(float* d, unsigned a, unsigned b) {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int s = 0; s < WG_BK / 16; s++) {
        if (TB) wg_mma<0>(d, wg_desc(a + 32 * s), wg_desc(b + 32 * s));
        else if (tma) wg_mma<1>(d, wg_desc(a + 32 * s), wg_desc_mn_tma(b + 2048 * s));
        else wg_mma<1>(d, wg_desc(a + 32 * s), wg_desc_mn(b + 4096 * s));
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

// wg_finish_lr masks (nn with dropout) and scales the finished low-rank
// product of a _lr kernel: only once no wgmma that writes the accumulators
// is in flight (the hardware would add to them after the scaling). The 64
// keep bits are drawn in a rolled loop first (gemm.cu's scale_acc says
// why). Accumulator i of lane l of warp w of the warpgroup whose rows
// start at row0 is row row0 + 16w + l/4 + 8*((i/2)%2), column bn + 8*(i/4)
// + 2*(l%4) + i%2.
template <bool TB>
__device__ __forceinline__ void wg_finish_lr(float* d, const LowRank& lr, int row0, int bn) {
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    const int w = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    if (!TB && lr.dropout) {
        unsigned long long bits = 0;
        DropoutCursor mc = dropout_cursor(lr.key, lr.pos, lr.drop, 1.f);
#pragma unroll 1
        for (int i = 0; i < 64; i++) {
            const long long row = row0 + w * 16 + (lane >> 2) + 8 * ((i >> 1) & 1);
            const long long col = bn + 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
            if (dropout_at(mc, row * lr.ldm + col) != 0.f) bits |= 1ull << i;
        }
#pragma unroll
        for (int i = 0; i < 64; i++) d[i] *= ((bits >> i) & 1) ? lr.keep : 0.f;
    }
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] *= lr.scale;
}

// wg_store_rows writes a warpgroup's accumulators, its 64 rows from row0:
// C = alpha*d + beta*C (beta 0 never reads C), C's element type CT (a bf16
// C rounded once). Two adjacent columns are stored as one access when C's
// address allows it. wg_store: the block's two warpgroups' rows.
template <typename CT>
__device__ __forceinline__ void wg_store_rows(const float* d, CT* __restrict__ C, int M, int N, int ldc,
                                              float alpha, float beta, int row0, int bn) {
    const int w = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const int row = row0 + w * 16 + (lane >> 2) + 8 * (j & 1);
        const int col = bn + 8 * (j >> 1) + 2 * (lane & 3);
        if (row >= M) continue;
        CT* p = C + (size_t)row * ldc + col;
        float v0 = alpha * d[2 * j], v1 = alpha * d[2 * j + 1];
        if (col + 1 < N && ((uintptr_t)p & (2 * sizeof(CT) - 1)) == 0) {
            if (beta != 0.f) {
                v0 += beta * to_f(p[0]);
                v1 += beta * to_f(p[1]);
            }
            if (sizeof(CT) == 4) {
                *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
            } else {
                __nv_bfloat162 o;
                o.x = __float2bfloat16_rn(v0);
                o.y = __float2bfloat16_rn(v1);
                *reinterpret_cast<__nv_bfloat162*>(p) = o;
            }
            continue;
        }
        if (col < N) p[0] = from_f<CT>(beta == 0.f ? v0 : v0 + beta * to_f(p[0]));
        if (col + 1 < N) p[1] = from_f<CT>(beta == 0.f ? v1 : v1 + beta * to_f(p[1]));
    }
}

template <typename CT>
__device__ __forceinline__ void wg_store(const float* d, CT* __restrict__ C, int M, int N, int ldc, float alpha,
                                         float beta, int bm, int bn) {
    wg_store_rows(d, C, M, N, ldc, alpha, beta, bm + (threadIdx.x >> 7) * 64, bn);
}

// wg_st16 stores 16 bytes at shared address a (an NF4 tile's chunk).
__device__ __forceinline__ void wg_st16(unsigned a, uint4 v) {
    asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

// WgBlock is where each wgmma kernel's block starts: its stage buffers in
// shared memory (A's tiles, then B's; aligned to the 1024 bytes of the
// 128-byte swizzle's repeat), its output tile's origin, its warpgroup
// (rows 64*wg.. of the tile) and its k-tiles: with LR, [0, nk2) are the
// low-rank pair's and [nk2, nk) the base product's.
struct WgBlock {
    unsigned sA, sB;
    int bm, bn, wg, nk2, nk;
};

template <bool LR>
__device__ __forceinline__ WgBlock wg_block(const unsigned char* smem, int K, const LowRank& lr) {
    WgBlock b;
    b.sA = (smem_addr(smem) + 1023) & ~1023u;
    b.sB = b.sA + WG_STAGES * WG_TILE;
    b.bm = blockIdx.y * WG_BM;
    b.bn = blockIdx.x * WG_BN;
    b.wg = threadIdx.x >> 7;
    b.nk2 = LR ? (lr.K + WG_BK - 1) / WG_BK : 0;
    b.nk = b.nk2 + (K + WG_BK - 1) / WG_BK;
    return b;
}

// gemm_wgmma: TB true for the nt product (B [N,K]), false for nn (B
// [K,N], MN-major tiles); LR adds the low-rank pair (common.cuh's
// LowRank), whose B2 has B's orientation. With NF4, B is the whole NF4
// weight w ([N,K] when TB, [K,N] otherwise; DQ: double-quantized scales),
// dequantized to bf16 by every thread (common.cuh's nf4_tile) and stored
// into the stage's swizzled tile with st.shared, the same layout cp.async
// fills (the fence.proxy.async at the top of each k-tile publishes these
// generic-proxy stores to wgmma too); the B pointer is unused.
//
// Per k-tile: wait for tile kt's copies, fence, barrier; issue tile kt's
// wgmma; then the loads of tile kt+2 into the stage tile kt-2 used (its
// wgmma retired in every warpgroup before the barrier), so that the NF4
// dequantization overlaps the tensor cores; commit; wait until one group
// is left in flight.
template <typename CT, bool TB, bool LR = false, bool NF4 = false, bool DQ = false>
__device__ void gemm_wgmma(const u16* __restrict__ A, const u16* __restrict__ B, CT* __restrict__ C, int M, int N,
                           int K, int lda, int ldb, int ldc, float alpha, float beta, LowRank lr = LowRank{},
                           NF4Weight w = NF4Weight{}) {
    extern __shared__ __align__(16) unsigned char wg_smem[];
    __shared__ float code[16];
    const WgBlock blk = wg_block<LR>(wg_smem, K, lr);
    const unsigned sA = blk.sA, sB = blk.sB;
    const int bm = blk.bm, bn = blk.bn, wg = blk.wg, nk2 = blk.nk2, nk = blk.nk;
    if (NF4) {
        nf4_codes(code);
        __syncthreads();
    }

    float d[64];
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] = 0.f;

    auto load = [&](int kt) {
        const int st = kt % WG_STAGES;
        const unsigned tb = sB + st * WG_TILE;
        const bool low = LR && kt < nk2;
        const u16* a = low ? lr.A : A;
        const u16* b = low ? lr.B : B;
        const int la = low ? lr.lda : lda, lb = low ? lr.ldb : ldb, kk = low ? lr.K : K;
        const int k0 = (low ? kt : kt - nk2) * WG_BK;
        wg_load(sA + st * WG_TILE, a, la, bm, k0, M, kk);
        if (NF4 && !low) {
            if (TB)
                nf4_tile<WG_BN, WG_BK, 256, DQ>(w, code, bn, k0, N, K, [&](int r, int c, uint4 v) {
                    wg_st16(tb + (r >> 3) * 1024 + (r & 7) * 128 + ((c ^ (r & 7)) << 4), v);
                });
            else
                nf4_tile<WG_BK, WG_BN, 256, DQ>(w, code, k0, bn, K, N, [&](int k, int c, uint4 v) {
                    wg_st16(tb + (k >> 3) * 2048 + (c >> 3) * 1024 + (k & 7) * 128 + (((c & 7) ^ (k & 7)) << 4), v);
                });
        } else if (TB) {
            wg_load(tb, b, lb, bn, k0, N, kk);
        } else {
            wg_load_mn(tb, b, lb, k0, bn, kk, N);
        }
    };
#pragma unroll
    for (int s = 0; s < WG_STAGES - 2; s++) {
        if (s < nk) load(s);
        cp_async_commit();
    }
    for (int kt = 0; kt < nk; kt++) {
        cp_async_wait<WG_STAGES - 3>();
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        if (LR && kt == nk2) wg_finish_lr<TB>(d, lr, bm + wg * 64, bn);
        const int st = kt % WG_STAGES;
        const unsigned a = sA + st * WG_TILE + wg * 64 * 128, b = sB + st * WG_TILE;
        wg_mma_tile<TB>(d, a, b);
        if (kt + WG_STAGES - 2 < nk) load(kt + WG_STAGES - 2);
        cp_async_commit();
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    cp_async_wait<0>();
    if (LR && nk == nk2) wg_finish_lr<TB>(d, lr, bm + wg * 64, bn);  // K == 0: the low-rank product alone
    wg_store(d, C, M, N, ldc, alpha, beta, bm, bn);
}

// ---- TMA ---------------------------------------------------------------
//
// matmul_{nt,nn}_wgmma_tma{,_cbf16}_fwd_bf16 and
// matmul_{nt,nn}_wgmma_tma_lr_cbf16_fwd_bf16: the same products with the
// tiles brought in by the Tensor Memory Accelerator (cp.async.bulk.tensor)
// instead of every thread's cp.async. The operands are described by tensor
// maps (CUtensorMap, 128 bytes, built on the host by cuTensorMapEncodeTiled
// and passed as __grid_constant__ parameters): a row-major bf16 matrix,
// 128-byte swizzle, boxes of 64 elements along the row (128 bytes, the
// swizzle's width) by 128 rows (A; nt's B: a whole K-major tile) or 64 rows
// (nn's B: one 64-column half of the MN-major tile, 64 k-rows; the halves
// 8192 bytes apart: leading byte offset 8192, stride byte offset 1024).
// Elements past the matrix are zero-filled by the TMA unit, so M, N and K
// are free; only the row pitch (lda, ldb: multiples of 8) and 16-byte
// aligned A and B are required (the tensor map's).
//
// Pipeline, as the cp.async kernels' (prefetch distance 2, one wgmma group
// in flight, 4 stages), with one mbarrier a stage instead of cp.async
// groups: thread 0 arms stage st's barrier with the tile's byte count
// (arrive.expect_tx) and issues its boxes; the TMA unit completes the
// transaction; every thread waits on the barrier's phase (the n-th use of a
// stage is phase n, parity n & 1) before its wgmma read the stage. The
// barrier at the top of iteration kt (every warpgroup has retired tile
// kt-2's wgmma by then) frees the stage that tile kt+2 overwrites. TMA
// writes and wgmma reads both go through the async proxy: no proxy fence.

struct __align__(64) TensorMap {
    unsigned long long v[16];  // CUtensorMap: opaque, the driver's encoding
};

__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
    asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// mbar_expect_tx: this thread's arrival, announcing bytes of transactions.
__device__ __forceinline__ void mbar_expect_tx(unsigned bar, unsigned bytes) {
    unsigned long long state;
    asm volatile("mbarrier.arrive.expect_tx.shared.b64 %0, [%1], %2;\n" : "=l"(state) : "r"(bar), "r"(bytes) : "memory");
}

// mbar_arrive: this thread's arrival, no transactions.
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
    unsigned long long state;
    asm volatile("mbarrier.arrive.shared.b64 %0, [%1];\n" : "=l"(state) : "r"(bar) : "memory");
}

// mbar_wait spins until the barrier's phase of the given parity completes.
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    unsigned done = 0;
    while (!done) {
        asm volatile(
            "{\n"
            " .reg .pred P1;\n"
            " mbarrier.try_wait.parity.shared.b64 P1, [%1], %2;\n"
            " selp.u32 %0, 1, 0, P1;\n"
            "}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    }
}

// tma_load copies the box at (c0 along the row, c1 rows) of map into shared
// memory at dst, completing its bytes on bar.
__device__ __forceinline__ void tma_load(unsigned dst, const TensorMap* map, int c0, int c1, unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}

// wg_issue (one thread) arms bar with a tile's bytes and issues the boxes
// of tile kt (with LR, tiles below nk2 are the low-rank pair's) into the
// stage at a (A) and b (B).
template <bool TB, bool LR>
__device__ __forceinline__ void wg_issue(unsigned a, unsigned b, unsigned bar, int kt, int nk2, const TensorMap* mA,
                                         const TensorMap* mB, const TensorMap* mA2, const TensorMap* mB2, int bm,
                                         int bn) {
    const bool low = LR && kt < nk2;
    const TensorMap* ma = low ? mA2 : mA;
    const TensorMap* mb = low ? mB2 : mB;
    const int k0 = (low ? kt : kt - nk2) * WG_BK;
    mbar_expect_tx(bar, 2 * WG_TILE);
    tma_load(a, ma, k0, bm, bar);
    if (TB) {
        tma_load(b, mb, k0, bn, bar);
    } else {
        tma_load(b, mb, bn, k0, bar);
        tma_load(b + WG_TILE / 2, mb, bn + 64, k0, bar);
    }
}

// gemm_wgmma_tma: gemm_wgmma with TMA loads; mA, mB the base pair's maps,
// mA2, mB2 the low-rank pair's (LR; lr's pointers and leading dimensions
// unused).
template <typename CT, bool TB, bool LR = false>
__device__ void gemm_wgmma_tma(const TensorMap* mA, const TensorMap* mB, CT* __restrict__ C, int M, int N, int K,
                               int ldc, float alpha, float beta, const TensorMap* mA2 = nullptr,
                               const TensorMap* mB2 = nullptr, LowRank lr = LowRank{}) {
    extern __shared__ __align__(16) unsigned char wg_smem[];
    __shared__ __align__(8) unsigned long long bars[WG_STAGES];
    const WgBlock blk = wg_block<LR>(wg_smem, K, lr);
    const unsigned sA = blk.sA, sB = blk.sB;
    const int bm = blk.bm, bn = blk.bn, wg = blk.wg, nk2 = blk.nk2, nk = blk.nk;

    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < WG_STAGES; s++) mbar_init(smem_addr(&bars[s]), 1);
        // The barriers were written through the generic proxy; the TMA
        // unit completes transactions on them through the async one.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();

    float d[64];
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] = 0.f;

    // load (thread 0): tile kt's boxes into its stage.
    auto load = [&](int kt) {
        const int st = kt % WG_STAGES;
        wg_issue<TB, LR>(sA + st * WG_TILE, sB + st * WG_TILE, smem_addr(&bars[st]), kt, nk2, mA, mB, mA2, mB2, bm, bn);
    };
    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < WG_STAGES - 2; s++)
            if (s < nk) load(s);
    }
    for (int kt = 0; kt < nk; kt++) {
        __syncthreads();
        if (threadIdx.x == 0 && kt + WG_STAGES - 2 < nk) load(kt + WG_STAGES - 2);
        if (LR && kt == nk2) wg_finish_lr<TB>(d, lr, bm + wg * 64, bn);
        const int st = kt % WG_STAGES;
        mbar_wait(smem_addr(&bars[st]), (kt / WG_STAGES) & 1);
        const unsigned a = sA + st * WG_TILE + wg * 64 * 128, b = sB + st * WG_TILE;
        wg_mma_tile<TB, true>(d, a, b);
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    if (LR && nk == nk2) wg_finish_lr<TB>(d, lr, bm + wg * 64, bn);
    wg_store(d, C, M, N, ldc, alpha, beta, bm, bn);
}

// ---- TMA, warp-specialised -------------------------------------------
//
// matmul_{nt,nn}_wgmma_ws{,_cbf16}_fwd_bf16: the TMA products with the
// loads and the math in different warpgroups, 384 threads: warpgroup 0 is
// the producer (its thread 0 alone issues every tile's boxes; the others
// return at once), warpgroups 1 and 2 the consumers, 64 rows of the
// 128x128 tile each. Two mbarriers a stage: full (count 1: the producer's
// arrive.expect_tx, completed by the TMA unit's bytes) and empty (count 8:
// one arrival from each consumer warp once the wgmma reading the stage
// have retired). The producer runs ahead by up to 4 tiles, waiting on a
// stage's empty barrier only to reuse it (tile kt's n-th reuse, n = kt/4,
// waits for phase n-1 of the stage's empty barrier); consumers wait on the
// full barrier (phase kt/4), keep one wgmma group in flight and release a
// stage as soon as the group reading it retires. No block-wide barrier in
// the main loop. The producer ends by waiting for its last tiles' full
// phases, so that no copy it issued is outstanding when it exits.
template <typename CT, bool TB, bool LR = false>
__device__ void gemm_wgmma_ws(const TensorMap* mA, const TensorMap* mB, CT* __restrict__ C, int M, int N, int K,
                              int ldc, float alpha, float beta, const TensorMap* mA2 = nullptr,
                              const TensorMap* mB2 = nullptr, LowRank lr = LowRank{}) {
    extern __shared__ __align__(16) unsigned char wg_smem[];
    __shared__ __align__(8) unsigned long long full[WG_STAGES], empty[WG_STAGES];
    const WgBlock blk = wg_block<LR>(wg_smem, K, lr);
    const unsigned sA = blk.sA, sB = blk.sB;
    const int bm = blk.bm, bn = blk.bn, wg = blk.wg, nk2 = blk.nk2, nk = blk.nk;

    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < WG_STAGES; s++) {
            mbar_init(smem_addr(&full[s]), 1);
            mbar_init(smem_addr(&empty[s]), 8);
        }
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        if (threadIdx.x != 0) return;
        for (int kt = 0; kt < nk; kt++) {
            const int st = kt % WG_STAGES, n = kt / WG_STAGES;
            if (n > 0) mbar_wait(smem_addr(&empty[st]), (n - 1) & 1);
            wg_issue<TB, LR>(sA + st * WG_TILE, sB + st * WG_TILE, smem_addr(&full[st]), kt, nk2, mA, mB, mA2, mB2, bm, bn);
        }
        for (int kt = max(nk - WG_STAGES, 0); kt < nk; kt++)
            mbar_wait(smem_addr(&full[kt % WG_STAGES]), (kt / WG_STAGES) & 1);
        return;
    }

    // Consumers: warpgroup 1 or 2 takes rows 64*(wg-1) of the tile.
    const int cw = wg - 1;
    const bool releases = (threadIdx.x & 31) == 0;  // one arrival a warp
    float d[64];
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] = 0.f;
    for (int kt = 0; kt < nk; kt++) {
        const int st = kt % WG_STAGES;
        if (LR && kt == nk2) wg_finish_lr<TB>(d, lr, bm + cw * 64, bn);
        mbar_wait(smem_addr(&full[st]), (kt / WG_STAGES) & 1);
        const unsigned a = sA + st * WG_TILE + cw * 64 * 128, b = sB + st * WG_TILE;
        wg_mma_tile<TB, true>(d, a, b);
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        // Tile kt-1's group has retired in this warp: its stage is free.
        if (kt > 0 && releases) mbar_arrive(smem_addr(&empty[(kt - 1) % WG_STAGES]));
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    if (LR && nk == nk2) wg_finish_lr<TB>(d, lr, bm + cw * 64, bn);
    wg_store_rows(d, C, M, N, ldc, alpha, beta, bm + cw * 64, bn);
}

// The TMA entries (one block of 256 threads, or warp-specialised: 384):
// the tensor maps by value, then C and the sizes; the fused LoRA ones the
// low-rank pair's maps after the base pair's, then LR_ARGS, whose pointers
// and leading dimensions are unused (the maps hold them) but kept so the
// arguments match the other _lr entries.
#define WG_MAP_ENTRY(name, fn, threads, tb, CT)                                                                 \
    extern "C" __global__ void __launch_bounds__(threads)                                                      \
        name(const __grid_constant__ TensorMap mA, const __grid_constant__ TensorMap mB, CT* C, int M, int N,  \
             int K, int ldc, float alpha, float beta) {                                                        \
        fn<CT, tb>(&mA, &mB, C, M, N, K, ldc, alpha, beta);                                                    \
    }
#define WG_MAP_LR_ENTRY(name, fn, threads, tb)                                                                   \
    extern "C" __global__ void __launch_bounds__(threads)                                                       \
        name(const __grid_constant__ TensorMap mA, const __grid_constant__ TensorMap mB,                        \
             const __grid_constant__ TensorMap mA2, const __grid_constant__ TensorMap mB2, bf16* C, int M,     \
             int N, int K, int ldc, float alpha, float beta, LR_ARGS) {                                          \
        fn<bf16, tb, true>(&mA, &mB, C, M, N, K, ldc, alpha, beta, &mA2, &mB2, LR_PAIR);                        \
    }
WG_MAP_ENTRY(matmul_nt_wgmma_tma_fwd_bf16, gemm_wgmma_tma, 256, true, float)
WG_MAP_ENTRY(matmul_nt_wgmma_tma_cbf16_fwd_bf16, gemm_wgmma_tma, 256, true, bf16)
WG_MAP_ENTRY(matmul_nn_wgmma_tma_fwd_bf16, gemm_wgmma_tma, 256, false, float)
WG_MAP_ENTRY(matmul_nn_wgmma_tma_cbf16_fwd_bf16, gemm_wgmma_tma, 256, false, bf16)
WG_MAP_LR_ENTRY(matmul_nt_wgmma_tma_lr_cbf16_fwd_bf16, gemm_wgmma_tma, 256, true)
WG_MAP_LR_ENTRY(matmul_nn_wgmma_tma_lr_cbf16_fwd_bf16, gemm_wgmma_tma, 256, false)
WG_MAP_ENTRY(matmul_nt_wgmma_ws_fwd_bf16, gemm_wgmma_ws, 384, true, float)
WG_MAP_ENTRY(matmul_nt_wgmma_ws_cbf16_fwd_bf16, gemm_wgmma_ws, 384, true, bf16)
WG_MAP_ENTRY(matmul_nn_wgmma_ws_fwd_bf16, gemm_wgmma_ws, 384, false, float)
WG_MAP_ENTRY(matmul_nn_wgmma_ws_cbf16_fwd_bf16, gemm_wgmma_ws, 384, false, bf16)
WG_MAP_LR_ENTRY(matmul_nt_wgmma_ws_lr_cbf16_fwd_bf16, gemm_wgmma_ws, 384, true)
WG_MAP_LR_ENTRY(matmul_nn_wgmma_ws_lr_cbf16_fwd_bf16, gemm_wgmma_ws, 384, false)

#define WG_ENTRY(name, tb, CT)                                                                               \
    extern "C" __global__ void __launch_bounds__(256) name(const u16* A, const u16* B, CT* C, int M, int N, int K, \
                                                          int lda, int ldb, int ldc, float alpha, float beta) {   \
        gemm_wgmma<CT, tb>(A, B, C, M, N, K, lda, ldb, ldc, alpha, beta);                                      \
    }
WG_ENTRY(matmul_nt_wgmma_fwd_bf16, true, float)
WG_ENTRY(matmul_nt_wgmma_cbf16_fwd_bf16, true, bf16)
WG_ENTRY(matmul_nn_wgmma_fwd_bf16, false, float)
WG_ENTRY(matmul_nn_wgmma_cbf16_fwd_bf16, false, bf16)

// The NF4 products (QLoRA): gemm.cu's NF4 entries' arguments (the packed
// codes, the scales: absmax, or qabsmax, nested, dynmap and offset with
// double quantization), then for _lr LR_ARGS.
#define WG_NF4_ENTRY(name, tb, CT)                                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                                         \
        name(const u16* A, const unsigned char* packed, const float* absmax, CT* C, int M, int N, int K, int lda, \
             int ldc, int blocksize, float alpha, float beta) {                                                 \
        gemm_wgmma<CT, tb, false, true>(A, nullptr, C, M, N, K, lda, 0, ldc, alpha, beta, LowRank{},         \
                                        NF4Weight{packed, absmax, blocksize});                                  \
    }
#define WG_NF4DQ_ENTRY(name, tb, CT)                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                                          \
        name(const u16* A, const unsigned char* packed, const unsigned char* qabsmax, const float* nested,       \
             const float* dynmap, float offset, int nestedBlocksize, CT* C, int M, int N, int K, int lda, int ldc, \
             int blocksize, float alpha, float beta) {                                                           \
        gemm_wgmma<CT, tb, false, true, true>(                                                                  \
            A, nullptr, C, M, N, K, lda, 0, ldc, alpha, beta, LowRank{},                                        \
            NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize});           \
    }
WG_NF4_ENTRY(matmul_nt_wgmma_nf4_fwd_bf16, true, float)
WG_NF4_ENTRY(matmul_nt_wgmma_nf4_cbf16_fwd_bf16, true, bf16)
WG_NF4_ENTRY(matmul_nn_wgmma_nf4_fwd_bf16, false, float)
WG_NF4_ENTRY(matmul_nn_wgmma_nf4_cbf16_fwd_bf16, false, bf16)
WG_NF4DQ_ENTRY(matmul_nt_wgmma_nf4dq_fwd_bf16, true, float)
WG_NF4DQ_ENTRY(matmul_nt_wgmma_nf4dq_cbf16_fwd_bf16, true, bf16)
WG_NF4DQ_ENTRY(matmul_nn_wgmma_nf4dq_fwd_bf16, false, float)
WG_NF4DQ_ENTRY(matmul_nn_wgmma_nf4dq_cbf16_fwd_bf16, false, bf16)

#define WG_NF4_LR_ENTRY(name, tb)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256)                                                            \
        name(const u16* A, const unsigned char* packed, const float* absmax, bf16* C, int M, int N, int K, int lda, \
             int ldc, int blocksize, float alpha, float beta, LR_ARGS) {                                          \
        gemm_wgmma<bf16, tb, true, true>(A, nullptr, C, M, N, K, lda, 0, ldc, alpha, beta, LR_PAIR,              \
                                         NF4Weight{packed, absmax, blocksize});                                   \
    }
#define WG_NF4DQ_LR_ENTRY(name, tb)                                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                                           \
        name(const u16* A, const unsigned char* packed, const unsigned char* qabsmax, const float* nested,       \
             const float* dynmap, float offset, int nestedBlocksize, bf16* C, int M, int N, int K, int lda,      \
             int ldc, int blocksize, float alpha, float beta, LR_ARGS) {                                          \
        gemm_wgmma<bf16, tb, true, true, true>(                                                                  \
            A, nullptr, C, M, N, K, lda, 0, ldc, alpha, beta, LR_PAIR,                                           \
            NF4Weight{packed, nullptr, blocksize, qabsmax, nested, dynmap, offset, nestedBlocksize});            \
    }
WG_NF4_LR_ENTRY(matmul_nt_wgmma_nf4_lr_cbf16_fwd_bf16, true)
WG_NF4_LR_ENTRY(matmul_nn_wgmma_nf4_lr_cbf16_fwd_bf16, false)
WG_NF4DQ_LR_ENTRY(matmul_nt_wgmma_nf4dq_lr_cbf16_fwd_bf16, true)
WG_NF4DQ_LR_ENTRY(matmul_nn_wgmma_nf4dq_lr_cbf16_fwd_bf16, false)

// The fused LoRA products: the plain entries' arguments, then LR_ARGS
// (common.cuh; the mask on for nn only).
#define WG_LR_ENTRY(name, tb)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256) name(const u16* A, const u16* B, bf16* C, int M, int N, \
                                                          int K, int lda, int ldb, int ldc, float alpha,        \
                                                          float beta, LR_ARGS) {                                \
        gemm_wgmma<bf16, tb, true>(A, B, C, M, N, K, lda, ldb, ldc, alpha, beta, LR_PAIR);                   \
    }
WG_LR_ENTRY(matmul_nt_wgmma_lr_cbf16_fwd_bf16, true)
WG_LR_ENTRY(matmul_nn_wgmma_lr_cbf16_fwd_bf16, false)
