// CUDA kernels of the XQuant ops; the CPU reference is ggml-cpu/xquant-ops.cpp
// and the row format is defined in ggml-xquant.cpp:
//   per group of G = 128 (or 64, 32) channels: [fp16 scale][fp16 min][codes],
//   codes little-endian in a bit stream, values Hadamard-rotated; 16 bits = raw fp16.
//
// One warp owns one group: lane l holds channels l, l+32, l+64, l+96 of it, so
// the normalised Walsh-Hadamard transform is five shuffle stages plus
// log2(G/32) stages inside each lane's registers.
#include "xquant.cuh"
#include "ggml-xquant.h"
#include "convert.cuh"

#define XQ_WARP 32

static __device__ __forceinline__ int xq_group_bytes(int G, int bits) {
    return 4 + G * bits / 8;
}

// v[k] holds channel lane + 32k of the group
template <int G>
static __device__ __forceinline__ void xq_hadamard_warp(float * v, const int lane) {
    constexpr int VPL = G / XQ_WARP;
#pragma unroll
    for (int h = 1; h < XQ_WARP; h <<= 1) {
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            const float other = __shfl_xor_sync(0xffffffff, v[k], h, XQ_WARP);
            v[k] = (lane & h) ? other - v[k] : v[k] + other;
        }
    }
#pragma unroll
    for (int m = 1; m < VPL; m <<= 1) {
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            if (!(k & m)) {
                const float u = v[k];
                const float w = v[k + m];
                v[k]     = u + w;
                v[k + m] = u - w;
            }
        }
    }
    const float scale = 1.0f / sqrtf((float) G);
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        v[k] *= scale;
    }
}

static __device__ __forceinline__ int xq_unpack_code(const uint8_t * codes, const int i, const int bits) {
    const int bit = i * bits;
    uint32_t value = codes[bit / 8];
    if ((bit % 8) + bits > 8) {
        value |= (uint32_t) codes[bit / 8 + 1] << 8;
    }
    return (value >> (bit % 8)) & ((1u << bits) - 1);
}

// group g of a stored row into v (whole warp; lanes hold channels lane + 32k)
template <int G>
static __device__ __forceinline__ void xq_dequantize_group(const uint8_t * row, const int g, const int bits, const int lane, float * v) {
    constexpr int VPL = G / XQ_WARP;
    if (bits == 16) {
        const half * h = (const half *) row + (int64_t) g * G;
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            v[k] = __half2float(h[lane + XQ_WARP * k]);
        }
        return;
    }
    const uint8_t * p = row + (int64_t) g * xq_group_bytes(G, bits);
    const float scale = __half2float(((const half *) p)[0]);
    const float min   = __half2float(((const half *) p)[1]);
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        v[k] = min + scale * (float) xq_unpack_code(p + 4, lane + XQ_WARP * k, bits);
    }
    xq_hadamard_warp<G>(v, lane);
}

// grid (n_tokens, n / G), one warp per block (tokens and cells on x: grid y is limited to 65535)
template <int G>
static __global__ void k_xq_set_rows(
        const char * rows, const int64_t nb_rows1, const char * idxs, const bool idx64,
        const char * base, const int64_t nb_base1, uint8_t * dst, const int bits, const int64_t row_bytes) {
    constexpr int VPL = G / XQ_WARP;
    const int lane = threadIdx.x;
    const int64_t t = blockIdx.x;
    const int g = blockIdx.y;
    const int64_t cell = idx64 ? ((const int64_t *) idxs)[t] : ((const int32_t *) idxs)[t];
    const float * src = (const float *) (rows + t * nb_rows1) + (int64_t) g * G;
    const float * prev = base ? (const float *) (base + cell * nb_base1) + (int64_t) g * G : nullptr;
    uint8_t * out = dst + cell * row_bytes;

    float v[VPL];
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int i = lane + XQ_WARP * k;
        v[k] = prev ? src[i] - prev[i] : src[i];
    }
    if (bits == 16) {
        half * h = (half *) out + (int64_t) g * G;
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            h[lane + XQ_WARP * k] = __float2half(v[k]);
        }
        return;
    }
    xq_hadamard_warp<G>(v, lane);

    float lo = v[0];
    float hi = v[0];
#pragma unroll
    for (int k = 1; k < VPL; ++k) {
        lo = fminf(lo, v[k]);
        hi = fmaxf(hi, v[k]);
    }
#pragma unroll
    for (int offset = XQ_WARP / 2; offset > 0; offset >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffff, lo, offset, XQ_WARP));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffff, hi, offset, XQ_WARP));
    }
    // quantize against the fp16-rounded scale and min that dequantization will see
    const int levels = (1 << bits) - 1;
    const half scale_h = __float2half((hi - lo) / levels);
    const half min_h   = __float2half(lo);
    const float scale = __half2float(scale_h);
    const float min   = __half2float(min_h);
    const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;

    __shared__ uint8_t codes[G];
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const float q = rintf((v[k] - min) * inv_scale);
        codes[lane + XQ_WARP * k] = (uint8_t) fminf(fmaxf(q, 0.0f), (float) levels);
    }
    __syncwarp();

    uint8_t * p = out + (int64_t) g * xq_group_bytes(G, bits);
    if (lane == 0) {
        ((half *) p)[0] = scale_h;
        ((half *) p)[1] = min_h;
    }
    // byte b of the bit stream holds bits [8b, 8b + 8) of the concatenated codes
    for (int b = lane; b < G * bits / 8; b += XQ_WARP) {
        uint32_t byte = 0;
        for (int c = 8 * b / bits; c < G && c * bits < 8 * b + 8; ++c) {
            const int shift = c * bits - 8 * b;
            byte |= shift >= 0 ? (uint32_t) codes[c] << shift : (uint32_t) codes[c] >> -shift;
        }
        p[4 + b] = (uint8_t) byte;
    }
}

// dequantize only (no weight): grid (n_kv, n / G), one warp per block
template <int G>
static __global__ void k_xq_load(
        const uint8_t * stored, const int64_t row_bytes, const char * base, const int64_t nb_base1,
        char * dst, const int64_t nb1, const int bits) {
    constexpr int VPL = G / XQ_WARP;
    const int lane = threadIdx.x;
    const int64_t cell = blockIdx.x;
    const int g = blockIdx.y;
    float v[VPL];
    xq_dequantize_group<G>(stored + cell * row_bytes, g, bits, lane, v);
    float * out = (float *) (dst + cell * nb1) + (int64_t) g * G;
    const float * prev = base ? (const float *) (base + cell * nb_base1) + (int64_t) g * G : nullptr;
#pragma unroll
    for (int k = 0; k < VPL; ++k) {
        const int i = lane + XQ_WARP * k;
        out[i] = prev ? v[k] + prev[i] : v[k];
    }
}

// Fused rebuild: dst[o, j] = sum_i w[o, i] * X̂[j, i] (+ bias[o]) for a tile of
// XQ_TILE_O outputs by XQ_TILE_J cells. Per group of G channels, the block's
// warps dequantize the tile's cells into shared memory (registers -> smem,
// never global), stage the weight slice, and accumulate.
#define XQ_TILE_O 32
#define XQ_TILE_J 32
#define XQ_THREADS 256

template <int G, typename TW>
static __global__ void __launch_bounds__(XQ_THREADS) k_xq_rebuild(
        const uint8_t * stored, const int64_t row_bytes, const TW * w, const int64_t ldw,
        const float * bias, float * dst, const int64_t nb1,
        const int64_t n, const int64_t n_out, const int64_t n_kv, const int bits) {
    constexpr int VPL = G / XQ_WARP;
    __shared__ float xs[XQ_TILE_J][G + 1];
    __shared__ float ws[XQ_TILE_O][G + 1];

    const int tid  = threadIdx.x;
    const int lane = tid % XQ_WARP;
    const int warp = tid / XQ_WARP;
    const int64_t o0 = (int64_t) blockIdx.x * XQ_TILE_O;
    const int64_t j0 = (int64_t) blockIdx.y * XQ_TILE_J;

    // each thread: outputs to + 16r (r < 2), cells tj + 16c (c < 2)
    const int to = tid % 16;
    const int tj = tid / 16;
    float acc[2][2] = { { 0.0f, 0.0f }, { 0.0f, 0.0f } };

    for (int g = 0; g < n / G; ++g) {
        for (int jj = warp; jj < XQ_TILE_J; jj += XQ_THREADS / XQ_WARP) {
            const int64_t cell = j0 + jj;
            float v[VPL];
            if (cell < n_kv) {
                xq_dequantize_group<G>(stored + cell * row_bytes, g, bits, lane, v);
            } else {
#pragma unroll
                for (int k = 0; k < VPL; ++k) {
                    v[k] = 0.0f;
                }
            }
#pragma unroll
            for (int k = 0; k < VPL; ++k) {
                xs[jj][lane + XQ_WARP * k] = v[k];
            }
        }
        for (int e = tid; e < XQ_TILE_O * G; e += XQ_THREADS) {
            const int oo = e / G;
            const int i  = e % G;
            ws[oo][i] = o0 + oo < n_out ? ggml_cuda_cast<float>(w[(o0 + oo) * ldw + (int64_t) g * G + i]) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int i = 0; i < G; ++i) {
            const float w0 = ws[to][i];
            const float w1 = ws[to + 16][i];
            const float x0 = xs[tj][i];
            const float x1 = xs[tj + 16][i];
            acc[0][0] += w0 * x0;
            acc[0][1] += w0 * x1;
            acc[1][0] += w1 * x0;
            acc[1][1] += w1 * x1;
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int64_t o = o0 + to + 16 * r;
        if (o >= n_out) {
            continue;
        }
        const float b = bias ? bias[o] : 0.0f;
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int64_t j = j0 + tj + 16 * c;
            if (j < n_kv) {
                ((float *) ((char *) dst + j * nb1))[o] = acc[r][c] + b;
            }
        }
    }
}

bool ggml_cuda_xq_supports_op(const ggml_tensor * op) {
    const int bits = ggml_get_op_params_i32(op, 0);
    const int64_t n = ggml_get_op_params_i32(op, 1);
    if (!ggml_xq_bits_supported(bits) || ggml_xq_group_size(n) == 0) {
        return false;
    }
    if (op->op == GGML_OP_XQ_SET_ROWS) {
        return op->src[0]->type == GGML_TYPE_F32 && (op->src[1]->type == GGML_TYPE_I64 || op->src[1]->type == GGML_TYPE_I32);
    }
    const ggml_tensor * w = op->src[1];
    return w == nullptr || w->type == GGML_TYPE_F32 || w->type == GGML_TYPE_F16;
}

template <int G>
static void xq_set_rows_launch(const ggml_tensor * dst, int bits, cudaStream_t stream) {
    const ggml_tensor * rows = dst->src[0];
    const ggml_tensor * idxs = dst->src[1];
    const ggml_tensor * base = dst->src[3];
    const int64_t n = rows->ne[0];
    if (rows->ne[1] == 0) {
        return;
    }
    const dim3 grid(rows->ne[1], n / G);
    k_xq_set_rows<G><<<grid, XQ_WARP, 0, stream>>>(
        (const char *) rows->data, rows->nb[1], (const char *) idxs->data, idxs->type == GGML_TYPE_I64,
        base ? (const char *) base->data : nullptr, base ? base->nb[1] : 0,
        (uint8_t *) dst->data, bits, ggml_xq_row_bytes(n, bits));
}

template <int G>
static void xq_rebuild_launch(const ggml_tensor * dst, int bits, int64_t n, cudaStream_t stream) {
    const ggml_tensor * stored = dst->src[0];
    const ggml_tensor * w      = dst->src[1];
    const ggml_tensor * bias   = dst->src[2];
    const ggml_tensor * base   = dst->src[3];
    const int64_t n_kv = dst->ne[1];
    const int64_t row_bytes = ggml_xq_row_bytes(n, bits);
    if (n_kv == 0) {
        return;
    }
    if (w == nullptr) {
        const dim3 grid(n_kv, n / G);
        k_xq_load<G><<<grid, XQ_WARP, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, base ? (const char *) base->data : nullptr, base ? base->nb[1] : 0,
            (char *) dst->data, dst->nb[1], bits);
        return;
    }
    const int64_t n_out = w->ne[1];
    const dim3 grid((n_out + XQ_TILE_O - 1) / XQ_TILE_O, (n_kv + XQ_TILE_J - 1) / XQ_TILE_J);
    const float * b = bias ? (const float *) bias->data : nullptr;
    if (w->type == GGML_TYPE_F16) {
        k_xq_rebuild<G, half><<<grid, XQ_THREADS, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, (const half *) w->data, w->nb[1] / sizeof(half),
            b, (float *) dst->data, dst->nb[1], n, n_out, n_kv, bits);
    } else {
        GGML_ASSERT(w->type == GGML_TYPE_F32);
        k_xq_rebuild<G, float><<<grid, XQ_THREADS, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, (const float *) w->data, w->nb[1] / sizeof(float),
            b, (float *) dst->data, dst->nb[1], n, n_out, n_kv, bits);
    }
}

void ggml_cuda_op_xq_set_rows(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    cudaStream_t stream = ctx.stream();
    switch (ggml_xq_group_size(n)) {
        case 128: xq_set_rows_launch<128>(dst, bits, stream); break;
        case 64:  xq_set_rows_launch<64> (dst, bits, stream); break;
        case 32:  xq_set_rows_launch<32> (dst, bits, stream); break;
        default:  GGML_ABORT("XQ_SET_ROWS: row width %lld has no group size", (long long) n);
    }
    CUDA_CHECK(cudaGetLastError());
}

void ggml_cuda_op_xq_rebuild(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    cudaStream_t stream = ctx.stream();
    switch (ggml_xq_group_size(n)) {
        case 128: xq_rebuild_launch<128>(dst, bits, n, stream); break;
        case 64:  xq_rebuild_launch<64> (dst, bits, n, stream); break;
        case 32:  xq_rebuild_launch<32> (dst, bits, n, stream); break;
        default:  GGML_ABORT("XQ_REBUILD: row width %lld has no group size", (long long) n);
    }
    CUDA_CHECK(cudaGetLastError());
}
