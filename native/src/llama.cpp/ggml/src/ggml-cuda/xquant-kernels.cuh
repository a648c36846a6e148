// Device code of the XQuant CUDA kernels (host side: xquant.cu). It includes
// nothing itself: xquant.cu includes it after common.cuh, and the CPU emulation
// test (native/tests/gpu-emulate) after its CUDA shim, so the test runs this code.
//
// Row format (ggml-xquant.cpp): per group of G = 128 (or 64, 32) channels
// [fp16 scale][fp16 min][codes], codes little-endian in a bit stream, values
// Hadamard-rotated; 16 bits = raw fp16. One warp owns one group: lane l holds
// channels l, l+32, l+64, l+96 of it, so the normalised Walsh-Hadamard transform
// is five shuffle stages plus log2(G/32) stages inside each lane's registers.
#pragma once

#define XQ_WARP 32
// the quantizer's range candidates, as GGML_XQ_CLIP_STEPS
#define XQ_CLIP_STEPS 9

static __device__ __forceinline__ float xq_to_float(const float x) {
    return x;
}

static __device__ __forceinline__ float xq_to_float(const half x) {
    return __half2float(x);
}

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

// The quantizer's range for one group (ggml-xquant.cpp, choose_group_params): min-max,
// or the clipped candidate with the least squared error, summed per lane then by an xor
// butterfly as the CPU sums it; the _rn intrinsics keep nvcc from fusing multiply-adds
// that the CPU does not fuse, so both store the same bytes.
template <int G>
static __device__ __forceinline__ void xq_choose_group_params(const float * v, const int levels, half & scale_h, half & min_h) {
    constexpr int VPL = G / XQ_WARP;
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
    const float centre = 0.5f * (lo + hi);
    float best_error = 0.0f;
    for (int step = 0; step < XQ_CLIP_STEPS; ++step) {
        const float keep = 1.0f - 0.0625f * step;
        // quantize against the fp16-rounded scale and min that dequantization will see
        const half candidate_scale = __float2half(__fmul_rn(keep, hi - lo) / levels);
        const half candidate_min   = __float2half(centre - __fmul_rn(keep, centre - lo));
        const float scale = __half2float(candidate_scale);
        const float min   = __half2float(candidate_min);
        const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
        float error = 0.0f;
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            const float q = fminf(fmaxf(rintf((v[k] - min) * inv_scale), 0.0f), (float) levels);
            const float d = __fadd_rn(min, __fmul_rn(scale, q)) - v[k];
            error = k == 0 ? __fmul_rn(d, d) : __fadd_rn(error, __fmul_rn(d, d));
        }
#pragma unroll
        for (int offset = XQ_WARP / 2; offset > 0; offset >>= 1) {
            error = __fadd_rn(error, __shfl_xor_sync(0xffffffff, error, offset, XQ_WARP));
        }
        if (step == 0 || error < best_error) {
            best_error = error;
            scale_h = candidate_scale;
            min_h = candidate_min;
        }
    }
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

    const int levels = (1 << bits) - 1;
    half scale_h = __float2half(0.0f);
    half min_h   = __float2half(0.0f);
    xq_choose_group_params<G>(v, levels, scale_h, min_h);
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
            ws[oo][i] = o0 + oo < n_out ? xq_to_float(w[(o0 + oo) * ldw + (int64_t) g * G + i]) : 0.0f;
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
