// embedding.cu: token embedding lookup.
//
//   forward:  out[t, :] = table[ids[t], :]           table [V, C], out [N, C]
//   backward: dtable[ids[t], :] += dout[t, :]         (dtable +=, float32, atomics)
//
// An id outside [0, V) gives a zero row forward and is skipped backward; the
// caller validates ids on the host, where they come from (the data pipeline).
// One block per token row, threads over C. The backward's atomics make
// repeated ids sum in an unspecified order (float32 rounding differences).
#include "common.cuh"

template <typename T>
__device__ void embedding_fwd(T* __restrict__ out, const T* __restrict__ table, const int* __restrict__ ids, int V, int C) {
    size_t t = blockIdx.x;
    int id = ids[t];
    bool ok = id >= 0 && id < V;
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        out[t * C + j] = ok ? table[(size_t)id * C + j] : from_f<T>(0.f);
}

template <typename T>
__device__ void embedding_bwd(float* __restrict__ dtable, const T* __restrict__ dout, const int* __restrict__ ids, int V, int C) {
    size_t t = blockIdx.x;
    int id = ids[t];
    if (id < 0 || id >= V) return;
    for (int j = threadIdx.x; j < C; j += blockDim.x) atomicAdd(dtable + (size_t)id * C + j, to_f(dout[t * C + j]));
}

extern "C" __global__ void embedding_fwd_f32(float* out, const float* table, const int* ids, int V, int C) { embedding_fwd(out, table, ids, V, C); }
extern "C" __global__ void embedding_fwd_bf16(bf16* out, const bf16* table, const int* ids, int V, int C) { embedding_fwd(out, table, ids, V, C); }
extern "C" __global__ void embedding_bwd_f32(float* dtable, const float* dout, const int* ids, int V, int C) { embedding_bwd(dtable, dout, ids, V, C); }
extern "C" __global__ void embedding_bwd_bf16(float* dtable, const bf16* dout, const int* ids, int V, int C) { embedding_bwd(dtable, dout, ids, V, C); }
