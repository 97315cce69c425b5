// gemm_sm90.cu: the bf16 tensor-core product on Hopper's warpgroup MMA
// (wgmma, PTX ISA 8.0, target sm_90a: compute capability 9.0 only; the
// launcher loads this module on such a GPU alone).
//
//   matmul_nt_wgmma_fwd_bf16:        C[M,N] = alpha * A[M,K] * B[N,K]^T + beta * C, f32 C
//   matmul_nt_wgmma_cbf16_fwd_bf16:  the same with C stored as bf16 (rounded once)
//   matmul_nt_wgmma_lr_cbf16_fwd_bf16: a LoRA layer's forward in one kernel,
//       C = alpha * (A * B^T + scale2 * A2[M,K2] * B2[N,K2]^T) + beta * C, bf16 C
//       (gemm.cu's matmul_nt_lr_cbf16 on wgmma: the rank's k-tiles run
//       first through the same ring into the same accumulators, which are
//       scaled once every wgmma reading them has retired; then the base
//       product's tiles; C written and rounded once)
//
// The nt product is the forward y = x W^T of every Linear layer. Contract
// (the launcher checks it; other products run gemm.cu's sm_80 kernels):
// K, lda and ldb (and the low-rank pair's K2, lda2, ldb2) multiples of 8
// and A, B (A2, B2) 16-byte aligned, so that every
// 16-byte chunk of a row is one cp.async (a chunk past M, N or K is
// zero-filled). beta == 0 never reads C.
//
// Block tile 128x128x64, 256 threads: two warpgroups, each owning 64 rows
// of the tile and all 128 columns (wgmma m64n128k16, 64 float accumulators
// a thread, f32 accumulation). A and B tiles reach shared memory through
// cp.async in the 128-byte swizzled K-major layout wgmma reads (16-byte
// chunk c of tile row r at (r/8)*1024 + (r%8)*128 + 16*(c ^ r%8); a tile
// row is 64 bf16 = 128 bytes, so a tile is 16 atoms of 8 rows x 128 bytes,
// each 1024-byte aligned), in a ring of 4 stages (128 KB, plus 1 KB to
// align the ring). The descriptor of k-step s (16 wide) starts 32*s bytes
// into the atom's rows; the hardware swizzles the whole address.
//
// Pipeline per k-tile kt (prefetch distance 2, one wgmma group in flight):
// wait for tile kt's copies, fence.proxy.async (cp.async writes through the
// generic proxy, wgmma reads through the async one), barrier; issue the
// copies of tile kt+2 into the stage tile kt-2 used (its wgmmas were
// retired by every warpgroup before the barrier); four wgmma on stage kt;
// commit; wait until one group is left in flight.
#include "common.cuh"

#define WG_BM 128
#define WG_BN 128
#define WG_BK 64
#define WG_STAGES 4
#define WG_TILE (128 * 64 * 2)  // bytes of one A or B tile

// The 64-bit matrix descriptor of a 128-byte swizzled K-major operand at
// shared address a: start address >> 4, leading byte offset 1 (unused by
// this layout), stride byte offset 1024 >> 4 (the next 8 rows), swizzle
// mode 1 (128 bytes).
__device__ __forceinline__ unsigned long long wg_desc(unsigned a) {
    return (unsigned long long)((a & 0x3FFFF) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}

// wg_load copies rows [row0, row0+128) x k [k0, k0+64) of a row-major
// [rows, K] bf16 matrix (leading dimension ld) into the swizzled tile at
// shared address s; chunks outside the matrix are zero-filled.
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

// wg_mma: one wgmma m64n128k16 (d += A·B^T over 16 k) on descriptors da, db.
__device__ __forceinline__ void wg_mma(float* d, unsigned long long da, unsigned long long db) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, 1, 1, 1, 0, 0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db));
}

// WGLowRank is the LoRA pair of the _lr kernel (unused otherwise).
struct WGLowRank {
    const u16* A;
    const u16* B;
    int K, lda, ldb;
    float scale;
};

template <typename CT, bool LR = false>
__device__ void gemm_wgmma(const u16* __restrict__ A, const u16* __restrict__ B, CT* __restrict__ C, int M, int N,
                           int K, int lda, int ldb, int ldc, float alpha, float beta, WGLowRank lr = WGLowRank{}) {
    extern __shared__ __align__(16) unsigned char wg_smem[];
    const unsigned base = (smem_addr(wg_smem) + 1023) & ~1023u;
    const unsigned sA = base, sB = base + WG_STAGES * WG_TILE;
    const int bm = blockIdx.y * WG_BM, bn = blockIdx.x * WG_BN;
    const int wg = threadIdx.x >> 7;  // warpgroup: rows 64*wg.. of the tile
    // With LR, k-tiles [0, nk2) are the low-rank pair's, [nk2, nk) the
    // base product's.
    const int nk2 = LR ? (lr.K + WG_BK - 1) / WG_BK : 0;
    const int nk = nk2 + (K + WG_BK - 1) / WG_BK;

    float d[64];
#pragma unroll
    for (int i = 0; i < 64; i++) d[i] = 0.f;

    auto load = [&](int kt) {
        const int st = kt % WG_STAGES;
        if (LR && kt < nk2) {
            wg_load(sA + st * WG_TILE, lr.A, lr.lda, bm, kt * WG_BK, M, lr.K);
            wg_load(sB + st * WG_TILE, lr.B, lr.ldb, bn, kt * WG_BK, N, lr.K);
            return;
        }
        const int k0 = (kt - nk2) * WG_BK;
        wg_load(sA + st * WG_TILE, A, lda, bm, k0, M, K);
        wg_load(sB + st * WG_TILE, B, ldb, bn, k0, N, K);
    };
    // scale_lr multiplies the finished low-rank product by its scale: only
    // once no wgmma that writes the accumulators is in flight (the hardware
    // would add to them after the scaling).
    auto scale_lr = [&]() {
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
        for (int i = 0; i < 64; i++) d[i] *= lr.scale;
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
        if (kt + WG_STAGES - 2 < nk) load(kt + WG_STAGES - 2);
        cp_async_commit();
        if (LR && kt == nk2) scale_lr();
        const int st = kt % WG_STAGES;
        const unsigned a = sA + st * WG_TILE + wg * 64 * 128, b = sB + st * WG_TILE;
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int s = 0; s < WG_BK / 16; s++) wg_mma(d, wg_desc(a + 32 * s), wg_desc(b + 32 * s));
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    cp_async_wait<0>();
    if (LR && nk == nk2) scale_lr();  // K == 0: the low-rank product alone

    // Accumulator i of lane l of warp w (of the warpgroup): row
    // 16w + l/4 + 8*((i/2)%2), column 8*(i/4) + 2*(l%4) + i%2. Two adjacent
    // columns are stored as one access when C's address allows it.
    const int w = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const int row = bm + wg * 64 + w * 16 + (lane >> 2) + 8 * (j & 1);
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

extern "C" __global__ void __launch_bounds__(256) matmul_nt_wgmma_fwd_bf16(const u16* A, const u16* B, float* C, int M,
                                                                          int N, int K, int lda, int ldb, int ldc,
                                                                          float alpha, float beta) {
    gemm_wgmma<float>(A, B, C, M, N, K, lda, ldb, ldc, alpha, beta);
}

extern "C" __global__ void __launch_bounds__(256) matmul_nt_wgmma_cbf16_fwd_bf16(const u16* A, const u16* B, bf16* C,
                                                                                int M, int N, int K, int lda, int ldb,
                                                                                int ldc, float alpha, float beta) {
    gemm_wgmma<bf16>(A, B, C, M, N, K, lda, ldb, ldc, alpha, beta);
}

extern "C" __global__ void __launch_bounds__(256) matmul_nt_wgmma_lr_cbf16_fwd_bf16(
    const u16* A, const u16* B, bf16* C, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta,
    const u16* A2, const u16* B2, int K2, int lda2, int ldb2, float scale2) {
    gemm_wgmma<bf16, true>(A, B, C, M, N, K, lda, ldb, ldc, alpha, beta, WGLowRank{A2, B2, K2, lda2, ldb2, scale2});
}
