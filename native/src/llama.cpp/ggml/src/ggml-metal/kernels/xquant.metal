// Metal kernels of the XQuant ops (ggml-xquant.h), structurally parallel to
// ggml-cuda/xquant.cu: one simdgroup owns one group of G channels (lane l holds
// channels l, l+32, l+64, l+96), the Hadamard inverse is five simd_shuffle_xor
// stages plus in-register stages, and the fused rebuild dequantizes a tile of
// cells into threadgroup memory, never device memory.
// UNTESTED: written on a machine without Metal (see native/README.md).
#include "common.h"

#define XQ_WARP   32
// the quantizer's range candidates, as GGML_XQ_CLIP_STEPS
#define XQ_CLIP_STEPS 9
// 32 outputs x 16 cells per threadgroup of 128 threads (CUDA: 32 x 32, 256 threads):
// both tiles of a 128-wide group must fit Apple's 32 KB of threadgroup memory
#define XQ_TILE_O 32
#define XQ_TILE_J 16
#define XQ_THREADS 128

static inline int xq_group_bytes(int G, int bits) {
    return 4 + G * bits / 8;
}

template <int G>
static inline void xq_hadamard_simd(thread float * v, ushort lane) {
    constexpr int VPL = G / XQ_WARP;
    FOR_UNROLL (ushort h = 1; h < XQ_WARP; h <<= 1) {
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            const float other = simd_shuffle_xor(v[k], h);
            v[k] = (lane & h) ? other - v[k] : v[k] + other;
        }
    }
    FOR_UNROLL (int m = 1; m < VPL; m <<= 1) {
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            if (!(k & m)) {
                const float u = v[k];
                const float w = v[k + m];
                v[k]     = u + w;
                v[k + m] = u - w;
            }
        }
    }
    const float scale = 1.0f / sqrt((float) G);
    FOR_UNROLL (int k = 0; k < VPL; ++k) {
        v[k] *= scale;
    }
}

static inline int xq_unpack_code(device const uint8_t * codes, int i, int bits) {
    const int bit = i * bits;
    uint value = codes[bit / 8];
    if ((bit % 8) + bits > 8) {
        value |= (uint) codes[bit / 8 + 1] << 8;
    }
    return (value >> (bit % 8)) & ((1u << bits) - 1);
}

template <int G>
static inline void xq_dequantize_group(device const uint8_t * row, int g, int bits, ushort lane, thread float * v) {
    constexpr int VPL = G / XQ_WARP;
    if (bits == 16) {
        device const half * h = (device const half *) row + g * G;
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            v[k] = (float) h[lane + XQ_WARP * k];
        }
        return;
    }
    device const uint8_t * p = row + g * xq_group_bytes(G, bits);
    const float scale = (float) ((device const half *) p)[0];
    const float min   = (float) ((device const half *) p)[1];
    FOR_UNROLL (int k = 0; k < VPL; ++k) {
        v[k] = min + scale * (float) xq_unpack_code(p + 4, lane + XQ_WARP * k, bits);
    }
    xq_hadamard_simd<G>(v, lane);
}

// The quantizer's range for one group (ggml-xquant.cpp, choose_group_params): min-max,
// or the clipped candidate with the least squared error, summed per lane then by an xor
// butterfly as the CPU sums it (not simd_sum, whose order is the hardware's). Where the
// compiler fuses a multiply-add that the CPU does not, a near-tie may pick another
// candidate than the CPU; both decode with the same dequantizer.
template <int G>
static inline void xq_choose_group_params(thread const float * v, int levels, thread half & scale_h, thread half & min_h) {
    constexpr int VPL = G / XQ_WARP;
    float lo = v[0];
    float hi = v[0];
    FOR_UNROLL (int k = 1; k < VPL; ++k) {
        lo = min(lo, v[k]);
        hi = max(hi, v[k]);
    }
    lo = simd_min(lo);
    hi = simd_max(hi);
    const float centre = 0.5f * (lo + hi);
    float best_error = 0.0f;
    for (int step = 0; step < XQ_CLIP_STEPS; ++step) {
        const float keep = 1.0f - 0.0625f * step;
        // quantize against the fp16-rounded scale and min that dequantization will see
        const half candidate_scale = (half) (keep * (hi - lo) / levels);
        const half candidate_min   = (half) (centre - keep * (centre - lo));
        const float scale = (float) candidate_scale;
        const float mn    = (float) candidate_min;
        const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
        float error = 0.0f;
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            const float q = clamp(rint((v[k] - mn) * inv_scale), 0.0f, (float) levels);
            const float d = (mn + scale * q) - v[k];
            error = k == 0 ? d * d : error + d * d;
        }
        for (ushort offset = XQ_WARP / 2; offset > 0; offset >>= 1) {
            error += simd_shuffle_xor(error, offset);
        }
        if (step == 0 || error < best_error) {
            best_error = error;
            scale_h = candidate_scale;
            min_h = candidate_min;
        }
    }
}

// threadgroups (n_tokens, n / G), one simdgroup each
template <int G>
kernel void kernel_xq_set_rows(
        constant ggml_metal_kargs_xq_set_rows & args,
        device const char * rows,
        device const char * idxs,
        device const char * base,
        device       char * dst,
        threadgroup uint8_t * codes [[threadgroup(0)]],
        uint2  tgpig [[threadgroup_position_in_grid]],
        ushort lane  [[thread_index_in_simdgroup]]) {
    constexpr int VPL = G / XQ_WARP;
    const int t = tgpig.x;
    const int g = tgpig.y;
    const int64_t cell = args.idx64 ? ((device const int64_t *) idxs)[t] : (int64_t) ((device const int32_t *) idxs)[t];
    device const float * src  = (device const float *) (rows + t * args.nb_rows1) + g * G;
    device const float * prev = (device const float *) (base + cell * args.nb_base1) + g * G;
    device uint8_t * out = (device uint8_t *) dst + cell * args.row_bytes;

    float v[VPL];
    FOR_UNROLL (int k = 0; k < VPL; ++k) {
        const int i = lane + XQ_WARP * k;
        v[k] = args.has_base ? src[i] - prev[i] : src[i];
    }
    if (args.bits == 16) {
        device half * h = (device half *) out + g * G;
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            h[lane + XQ_WARP * k] = (half) v[k];
        }
        return;
    }
    xq_hadamard_simd<G>(v, lane);

    const int levels = (1 << args.bits) - 1;
    half scale_h = (half) 0.0f;
    half min_h   = (half) 0.0f;
    xq_choose_group_params<G>(v, levels, scale_h, min_h);
    const float scale = (float) scale_h;
    const float mn    = (float) min_h;
    const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
    FOR_UNROLL (int k = 0; k < VPL; ++k) {
        const float q = rint((v[k] - mn) * inv_scale);
        codes[lane + XQ_WARP * k] = (uint8_t) clamp(q, 0.0f, (float) levels);
    }
    simdgroup_barrier(mem_flags::mem_threadgroup);

    device uint8_t * p = out + g * xq_group_bytes(G, args.bits);
    if (lane == 0) {
        ((device half *) p)[0] = scale_h;
        ((device half *) p)[1] = min_h;
    }
    // byte b of the bit stream holds bits [8b, 8b + 8) of the concatenated codes
    for (int b = lane; b < G * args.bits / 8; b += XQ_WARP) {
        uint byte = 0;
        for (int c = 8 * b / args.bits; c < G && c * args.bits < 8 * b + 8; ++c) {
            const int shift = c * args.bits - 8 * b;
            byte |= shift >= 0 ? (uint) codes[c] << shift : (uint) codes[c] >> -shift;
        }
        p[4 + b] = (uint8_t) byte;
    }
}

typedef decltype(kernel_xq_set_rows<128>) kernel_xq_set_rows_t;
template [[host_name("kernel_xq_set_rows_g128")]] kernel kernel_xq_set_rows_t kernel_xq_set_rows<128>;
template [[host_name("kernel_xq_set_rows_g64")]]  kernel kernel_xq_set_rows_t kernel_xq_set_rows<64>;
template [[host_name("kernel_xq_set_rows_g32")]]  kernel kernel_xq_set_rows_t kernel_xq_set_rows<32>;

// load only: threadgroups (n_kv, n / G), one simdgroup each
template <int G>
kernel void kernel_xq_load(
        constant ggml_metal_kargs_xq_rebuild & args,
        device const char * stored,
        device const char * base,
        device       char * dst,
        uint2  tgpig [[threadgroup_position_in_grid]],
        ushort lane  [[thread_index_in_simdgroup]]) {
    constexpr int VPL = G / XQ_WARP;
    const int64_t cell = tgpig.x;
    const int g = tgpig.y;
    float v[VPL];
    xq_dequantize_group<G>((device const uint8_t *) stored + cell * args.row_bytes, g, args.bits, lane, v);
    device float * out = (device float *) (dst + cell * args.nb1) + g * G;
    device const float * prev = (device const float *) (base + cell * args.nb_base1) + g * G;
    FOR_UNROLL (int k = 0; k < VPL; ++k) {
        const int i = lane + XQ_WARP * k;
        out[i] = args.has_base ? v[k] + prev[i] : v[k];
    }
}

typedef decltype(kernel_xq_load<128>) kernel_xq_load_t;
template [[host_name("kernel_xq_load_g128")]] kernel kernel_xq_load_t kernel_xq_load<128>;
template [[host_name("kernel_xq_load_g64")]]  kernel kernel_xq_load_t kernel_xq_load<64>;
template [[host_name("kernel_xq_load_g32")]]  kernel kernel_xq_load_t kernel_xq_load<32>;

// fused rebuild: threadgroups (ceil(n_out / 32), ceil(n_kv / 16)) of 128 threads
template <int G, typename TW>
kernel void kernel_xq_rebuild(
        constant ggml_metal_kargs_xq_rebuild & args,
        device const char * stored,
        device const char * w,
        device const char * bias,
        device       char * dst,
        uint2  tgpig [[threadgroup_position_in_grid]],
        ushort tid   [[thread_index_in_threadgroup]],
        ushort lane  [[thread_index_in_simdgroup]],
        ushort warp  [[simdgroup_index_in_threadgroup]]) {
    constexpr int VPL = G / XQ_WARP;
    threadgroup float xs[XQ_TILE_J][G + 1];
    threadgroup float ws[XQ_TILE_O][G + 1];

    const int64_t o0 = (int64_t) tgpig.x * XQ_TILE_O;
    const int64_t j0 = (int64_t) tgpig.y * XQ_TILE_J;
    // each thread: outputs to + 16r (r < 2), cells tj + 8c (c < 2)
    const int to = tid % 16;
    const int tj = tid / 16;
    float acc[2][2] = { { 0.0f, 0.0f }, { 0.0f, 0.0f } };

    device const TW * wt = (device const TW *) w;
    for (int g = 0; g < args.n / G; ++g) {
        for (int jj = warp; jj < XQ_TILE_J; jj += XQ_THREADS / XQ_WARP) {
            const int64_t cell = j0 + jj;
            float v[VPL];
            if (cell < args.n_kv) {
                xq_dequantize_group<G>((device const uint8_t *) stored + cell * args.row_bytes, g, args.bits, lane, v);
            } else {
                FOR_UNROLL (int k = 0; k < VPL; ++k) {
                    v[k] = 0.0f;
                }
            }
            FOR_UNROLL (int k = 0; k < VPL; ++k) {
                xs[jj][lane + XQ_WARP * k] = v[k];
            }
        }
        for (int e = tid; e < XQ_TILE_O * G; e += XQ_THREADS) {
            const int oo = e / G;
            const int i  = e % G;
            ws[oo][i] = o0 + oo < args.n_out ? (float) wt[(o0 + oo) * args.ldw + g * G + i] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (int i = 0; i < G; ++i) {
            const float w0 = ws[to][i];
            const float w1 = ws[to + 16][i];
            const float x0 = xs[tj][i];
            const float x1 = xs[tj + 8][i];
            acc[0][0] += w0 * x0;
            acc[0][1] += w0 * x1;
            acc[1][0] += w1 * x0;
            acc[1][1] += w1 * x1;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }

    for (int r = 0; r < 2; ++r) {
        const int64_t o = o0 + to + 16 * r;
        if (o >= args.n_out) {
            continue;
        }
        const float b = args.has_bias ? ((device const float *) bias)[o] : 0.0f;
        for (int c = 0; c < 2; ++c) {
            const int64_t j = j0 + tj + 8 * c;
            if (j < args.n_kv) {
                ((device float *) (dst + j * args.nb1))[o] = acc[r][c] + b;
            }
        }
    }
}

typedef decltype(kernel_xq_rebuild<128, float>) kernel_xq_rebuild_t;
template [[host_name("kernel_xq_rebuild_f32_g128")]] kernel kernel_xq_rebuild_t kernel_xq_rebuild<128, float>;
template [[host_name("kernel_xq_rebuild_f32_g64")]]  kernel kernel_xq_rebuild_t kernel_xq_rebuild<64,  float>;
template [[host_name("kernel_xq_rebuild_f32_g32")]]  kernel kernel_xq_rebuild_t kernel_xq_rebuild<32,  float>;
template [[host_name("kernel_xq_rebuild_f16_g128")]] kernel kernel_xq_rebuild_t kernel_xq_rebuild<128, half>;
template [[host_name("kernel_xq_rebuild_f16_g64")]]  kernel kernel_xq_rebuild_t kernel_xq_rebuild<64,  half>;
template [[host_name("kernel_xq_rebuild_f16_g32")]]  kernel kernel_xq_rebuild_t kernel_xq_rebuild<32,  half>;
