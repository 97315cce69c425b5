// rmsnorm.cu: RMSNorm over the last dimension C of x [R, C].
//
//   forward:  r = 1/sqrt(mean_j x_j^2 + eps);  y_j = x_j * r * w_j;  rstd[row] = r
//   backward: dx_j = r * w_j * dy_j - x_j * r^3 / C * sum_k(w_k dy_k x_k)   (dx =)
//             dw_j += sum_rows dy_j * x_j * r                                (dw +=)
//
// rmsnorm_fwd_{f32,bf16}, rmsnorm_bwd_{f32,bf16}: one block of 256 threads per
// row; x, w, y, dy, dx in the storage type, rstd in float32 (the _w32_
// variants, for bf16 storage only: w in float32). The sum in
// float32. rmsnorm_dw_bwd_{f32,bf16}: a block of 32x8 threads sums 32 columns
// over a chunk of 256 rows (coalesced 32-column reads), then one atomicAdd per
// column per block into the float32 dw (order of the atomic adds varies: dw is
// reproducible to float32 rounding, not bit for bit).
//
// add_rmsnorm_fwd_{f32,bf16}: the residual add fused with the norm that reads
// it, one block per row: h = a + b (rounded to the storage type, as the
// unfused add stores it), then y = rmsnorm(h)·w from that rounded h; reads a,
// b and writes h, y in one pass instead of add (3 passes) + norm (2). h may be
// a (the sum written over the branch's output, which nothing else reads): the
// second pass reads h back, by the thread that wrote it, never a.
// add_rmsnorm_bwd_{f32,bf16}: dx = dh + rmsnorm_bwd's dx (dh, the residual
// gradient, added in the same pass); dw comes from rmsnorm_dw_bwd with x = h.
#include "common.cuh"

template <typename T, typename W>
__device__ void rmsnorm_fwd(T* __restrict__ y, float* __restrict__ rstd, const T* __restrict__ x,
                            const W* __restrict__ w, int C, float eps) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const T* xr = x + row * C;
    T* yr = y + row * C;
    float ss = 0.f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float v = to_f(xr[j]);
        ss += v * v;
    }
    ss = block_sum(ss, scratch);
    float r = rsqrtf(ss / C + eps);
    for (int j = threadIdx.x; j < C; j += blockDim.x) yr[j] = from_f<T>(to_f(xr[j]) * r * to_f(w[j]));
    if (threadIdx.x == 0) rstd[row] = r;
}

template <typename T, typename W>
__device__ void rmsnorm_bwd(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                            const W* __restrict__ w, const float* __restrict__ rstd, int C) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const T* xr = x + row * C;
    const T* dyr = dy + row * C;
    float r = rstd[row];
    float dot = 0.f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) dot += to_f(w[j]) * to_f(dyr[j]) * to_f(xr[j]);
    dot = block_sum(dot, scratch);
    float k = r * r * r * dot / C;
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[row * C + j] = from_f<T>(r * to_f(w[j]) * to_f(dyr[j]) - to_f(xr[j]) * k);
}

template <typename T>
__device__ void rmsnorm_bwd_dw(float* __restrict__ dw, const T* __restrict__ dy, const T* __restrict__ x,
                               const float* __restrict__ rstd, int R, int C) {
    __shared__ float part[8][33];
    int j = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * 256;
    int r1 = min(R, r0 + 256);
    float s = 0.f;
    if (j < C)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) s += to_f(dy[(size_t)r * C + j]) * to_f(x[(size_t)r * C + j]) * rstd[r];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < C) {
        float t = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) t += part[i][threadIdx.x];
        atomicAdd(dw + j, t);
    }
}

template <typename T>
__device__ __forceinline__ float rounded_sum(T a, T b) {
    return to_f(from_f<T>(to_f(a) + to_f(b)));
}

template <typename T, typename W>
__device__ void add_rmsnorm_fwd(T* h, T* __restrict__ y, float* __restrict__ rstd, const T* a,
                                const T* __restrict__ b, const W* __restrict__ w, int C, float eps) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const T* ar = a + row * C;
    const T* br = b + row * C;
    T* hr = h + row * C;
    float ss = 0.f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float v = rounded_sum(ar[j], br[j]);
        hr[j] = from_f<T>(v);
        ss += v * v;
    }
    ss = block_sum(ss, scratch);
    float r = rsqrtf(ss / C + eps);
    // h holds the rounded sum exactly (one read instead of re-reading a and
    // b), and a may be h.
    for (int j = threadIdx.x; j < C; j += blockDim.x) y[row * C + j] = from_f<T>(to_f(hr[j]) * r * to_f(w[j]));
    if (threadIdx.x == 0) rstd[row] = r;
}

template <typename T, typename W>
__device__ void add_rmsnorm_bwd(T* __restrict__ dx, const T* __restrict__ dh, const T* __restrict__ dy, const T* __restrict__ x,
                                const W* __restrict__ w, const float* __restrict__ rstd, int C) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const T* xr = x + row * C;
    const T* dyr = dy + row * C;
    float r = rstd[row];
    float dot = 0.f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) dot += to_f(w[j]) * to_f(dyr[j]) * to_f(xr[j]);
    dot = block_sum(dot, scratch);
    float k = r * r * r * dot / C;
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[row * C + j] = from_f<T>(to_f(dh[row * C + j]) + (r * to_f(w[j]) * to_f(dyr[j]) - to_f(xr[j]) * k));
}

extern "C" __global__ void rmsnorm_fwd_f32(float* y, float* rstd, const float* x, const float* w, int C, float eps) { rmsnorm_fwd(y, rstd, x, w, C, eps); }
extern "C" __global__ void rmsnorm_fwd_bf16(bf16* y, float* rstd, const bf16* x, const bf16* w, int C, float eps) { rmsnorm_fwd(y, rstd, x, w, C, eps); }
extern "C" __global__ void rmsnorm_bwd_f32(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int C) { rmsnorm_bwd(dx, dy, x, w, rstd, C); }
extern "C" __global__ void rmsnorm_bwd_bf16(bf16* dx, const bf16* dy, const bf16* x, const bf16* w, const float* rstd, int C) { rmsnorm_bwd(dx, dy, x, w, rstd, C); }
extern "C" __global__ void rmsnorm_dw_bwd_f32(float* dw, const float* dy, const float* x, const float* rstd, int R, int C) { rmsnorm_bwd_dw(dw, dy, x, rstd, R, C); }
extern "C" __global__ void rmsnorm_dw_bwd_bf16(float* dw, const bf16* dy, const bf16* x, const float* rstd, int R, int C) { rmsnorm_bwd_dw(dw, dy, x, rstd, R, C); }
extern "C" __global__ void add_rmsnorm_fwd_f32(float* h, float* y, float* rstd, const float* a, const float* b, const float* w, int C, float eps) { add_rmsnorm_fwd(h, y, rstd, a, b, w, C, eps); }
extern "C" __global__ void add_rmsnorm_fwd_bf16(bf16* h, bf16* y, float* rstd, const bf16* a, const bf16* b, const bf16* w, int C, float eps) { add_rmsnorm_fwd(h, y, rstd, a, b, w, C, eps); }
extern "C" __global__ void add_rmsnorm_bwd_f32(float* dx, const float* dh, const float* dy, const float* x, const float* w, const float* rstd, int C) { add_rmsnorm_bwd(dx, dh, dy, x, w, rstd, C); }
extern "C" __global__ void add_rmsnorm_bwd_bf16(bf16* dx, const bf16* dh, const bf16* dy, const bf16* x, const bf16* w, const float* rstd, int C) { add_rmsnorm_bwd(dx, dh, dy, x, w, rstd, C); }
// bf16 activations with a float32 weight, used as it is (not rounded to
// bf16): Gemma's (1 + w), which transformers computes and applies in
// float32 (Gemma2RMSNorm, Gemma3RMSNorm).
extern "C" __global__ void rmsnorm_w32_fwd_bf16(bf16* y, float* rstd, const bf16* x, const float* w, int C, float eps) { rmsnorm_fwd(y, rstd, x, w, C, eps); }
extern "C" __global__ void rmsnorm_w32_bwd_bf16(bf16* dx, const bf16* dy, const bf16* x, const float* w, const float* rstd, int C) { rmsnorm_bwd(dx, dy, x, w, rstd, C); }
extern "C" __global__ void add_rmsnorm_w32_fwd_bf16(bf16* h, bf16* y, float* rstd, const bf16* a, const bf16* b, const float* w, int C, float eps) { add_rmsnorm_fwd(h, y, rstd, a, b, w, C, eps); }
extern "C" __global__ void add_rmsnorm_w32_bwd_bf16(bf16* dx, const bf16* dh, const bf16* dy, const bf16* x, const float* w, const float* rstd, int C) { add_rmsnorm_bwd(dx, dh, dy, x, w, rstd, C); }
