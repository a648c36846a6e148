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

// GGML_OP_XQ_ATTN: attention straight from the X-cache, flash-decoding style, as
// ggml-cuda/xquant-attn-kernels.cuh (the design notes are there). A threadgroup takes a
// kv head, a chunk of tokens and a split of the cells, and walks the split in tiles:
// K rebuilt group by group from X̂ in threadgroup memory, bias, k-norm and RoPE, scores
// and the online softmax, then the V source (absorbed) or w_v X̂ (plain) weighted into
// the split's partial result in device memory; kernel_xq_attn_merge combines the splits.
// Threadgroup memory: 28.6 KB at most (group 128, head_dim 256). The tile sizes are
// OP_XQ_ATTN_* in ggml-metal-impl.h, which the host plans by. Unlike the CUDA kernels,
// no infinity is computed with: Metal compiles with fast math, which may assume there is
// none, so "no score yet" is -FLT_MAX and the mask's -INF is only compared with it.
#define XQ_ATTN_STRIDE (OP_XQ_ATTN_CELLS + 1) // padded rows: a simdgroup's lanes hit distinct banks
#define XQ_ATTN_NONE   (-FLT_MAX)

static inline float xq_attn_mask(constant ggml_metal_kargs_xq_attn & args, device const char * mask, int t, int cell) {
    device const char * row = mask + t * args.nb_mask1;
    return args.mask_f16 ? (float) ((device const half *) row)[cell] : ((device const float *) row)[cell];
}

// partial result of query row r (token t0 + r / n_gqa, head hk * n_gqa + r % n_gqa) in a split
static inline int64_t xq_attn_pair(constant ggml_metal_kargs_xq_attn & args, int split, int t0, int hk, int r) {
    return ((int64_t) split * args.n_tokens + t0 + r / args.n_gqa) * args.n_head + hk * args.n_gqa + r % args.n_gqa;
}

// group g of the tile's cells into xs[channel][cell], one simdgroup per cell; the
// ubatch's own cells take their exact rows
template <int G>
static inline void xq_attn_load_group(constant ggml_metal_kargs_xq_attn & args, device const char * storage, device const char * exact,
        int cell0, int cells, int g, threadgroup const int * exact_of, threadgroup float * xs, ushort lane, ushort warp) {
    constexpr int VPL = G / XQ_WARP;
    for (int c = warp; c < OP_XQ_ATTN_CELLS; c += OP_XQ_ATTN_THREADS / XQ_WARP) {
        float v[VPL];
        if (c >= cells) {
            FOR_UNROLL (int k = 0; k < VPL; ++k) {
                v[k] = 0.0f;
            }
        } else if (exact_of[c] >= 0) {
            device const float * row = (device const float *) (exact + exact_of[c] * args.nb_exact1) + g * G;
            FOR_UNROLL (int k = 0; k < VPL; ++k) {
                v[k] = row[lane + XQ_WARP * k];
            }
        } else {
            xq_dequantize_group<G>((device const uint8_t *) storage + (int64_t) (cell0 + c) * args.row_bytes, g, args.bits, lane, v);
        }
        FOR_UNROLL (int k = 0; k < VPL; ++k) {
            xs[(lane + XQ_WARP * k) * XQ_ATTN_STRIDE + c] = v[k];
        }
    }
}

// out[d][c] (+)= sum over channels lo <= i < hi of w[row0 + d][col0 + i] * xs[i][c], d < head_dim
template <typename TW>
static inline void xq_attn_project(constant ggml_metal_kargs_xq_attn & args, device const TW * w, int64_t ldw, int64_t row0, int64_t col0,
        int lo, int hi, bool first, threadgroup const float * xs, threadgroup float * out, ushort tid) {
    const int c = tid % OP_XQ_ATTN_CELLS;
    for (int d = tid / OP_XQ_ATTN_CELLS; d < args.head_dim; d += OP_XQ_ATTN_THREADS / OP_XQ_ATTN_CELLS) {
        device const TW * w_row = w + (row0 + d) * ldw;
        float sum = 0.0f;
        for (int i = lo; i < hi; ++i) {
            sum += (float) w_row[col0 + i] * xs[i * XQ_ATTN_STRIDE + c];
        }
        out[d * XQ_ATTN_STRIDE + c] = first ? sum : out[d * XQ_ATTN_STRIDE + c] + sum;
    }
}

// K of one cell of kv head hk: bias, RMS norm over the head, RoPE at the cell's position
static inline void xq_attn_finish_k(constant ggml_metal_kargs_xq_attn & args, device const float * k_bias, device const float * k_norm,
        device const float * rope_factors, int hk, int pos, threadgroup float * k, int c) {
    const int D = args.head_dim;
    if (args.has_k_bias) {
        for (int d = 0; d < D; ++d) {
            k[d * XQ_ATTN_STRIDE + c] += k_bias[hk * D + d];
        }
    }
    if (args.has_k_norm) {
        float sum = 0.0f;
        for (int d = 0; d < D; ++d) {
            sum += k[d * XQ_ATTN_STRIDE + c] * k[d * XQ_ATTN_STRIDE + c];
        }
        const float scale = 1.0f / sqrt(sum / D + args.k_norm_eps);
        for (int d = 0; d < D; ++d) {
            k[d * XQ_ATTN_STRIDE + c] *= scale * k_norm[d];
        }
    }
    // theta advances by a product per pair, as on the CPU, so both round alike
    float theta_extrap = (float) pos;
    for (int i0 = 0; i0 < args.n_rot; i0 += 2) {
        const float theta_base = theta_extrap / (args.has_rope_factors ? rope_factors[i0 / 2] : 1.0f);
        float theta = args.freq_scale * theta_base;
        if (args.ext_factor != 0.0f) {
            const float y = (i0 / 2 - args.corr_dims[0]) / max(0.001f, args.corr_dims[1] - args.corr_dims[0]);
            const float ramp_mix = (1.0f - min(1.0f, max(0.0f, y))) * args.ext_factor;
            theta = theta * (1.0f - ramp_mix) + theta_base * ramp_mix;
        }
        // precise: the default fast-math cos/sin lose accuracy as the angle grows (positions reach 1e5 radians)
        const float cos_theta = precise::cos(theta) * args.mscale;
        const float sin_theta = precise::sin(theta) * args.mscale;
        // NORMAL rotates neighbours, NEOX the two halves of the rotated dims
        const int i = args.rope_neox ? i0 / 2 : i0;
        const int j = args.rope_neox ? i0 / 2 + args.n_rot / 2 : i0 + 1;
        const float x0 = k[i * XQ_ATTN_STRIDE + c];
        const float x1 = k[j * XQ_ATTN_STRIDE + c];
        k[i * XQ_ATTN_STRIDE + c] = x0 * cos_theta - x1 * sin_theta;
        k[j * XQ_ATTN_STRIDE + c] = x0 * sin_theta + x1 * cos_theta;
        theta_extrap *= args.theta_scale;
    }
}

// acc[r][e0 + e] = acc[r][e0 + e] * corr[r] + sum over cells of p[r][c] * src[lo + e][c]
static inline void xq_attn_accumulate(constant ggml_metal_kargs_xq_attn & args, device float * partial, int split, int t0, int hk, int n_rows,
        threadgroup const float * p, threadgroup const float * corr, threadgroup const float * src, int lo, int hi, int e0, ushort tid) {
    const int n = hi - lo;
    for (int idx = tid; idx < n_rows * n; idx += OP_XQ_ATTN_THREADS) {
        const int r = idx / n;
        const int e = idx % n;
        float sum = 0.0f;
        FOR_UNROLL (int c = 0; c < OP_XQ_ATTN_CELLS; ++c) {
            sum += p[r * OP_XQ_ATTN_CELLS + c] * src[(lo + e) * XQ_ATTN_STRIDE + c];
        }
        device float * acc = partial + xq_attn_pair(args, split, t0, hk, r) * args.out_width + e0 + e;
        *acc = *acc * corr[r] + sum;
    }
}

// threadgroups (n_head_kv * token chunks, n_splits) of OP_XQ_ATTN_THREADS; absent optional
// sources are bound to storage and flagged in args; tmp holds the splits' partial results,
// then their running max and sum
template <int G, typename TW>
kernel void kernel_xq_attn(
        constant ggml_metal_kargs_xq_attn & args,
        device const char * storage,
        device const char * q,
        device const char * wk,
        device const char * wv,
        device const char * k_bias,
        device const char * k_norm,
        device const char * rope_factors,
        device const char * cell_pos,
        device const char * mask,
        device const char * exact,
        device const char * idxs,
        device       char * tmp,
        uint2  tgpig [[threadgroup_position_in_grid]],
        ushort tid   [[thread_index_in_threadgroup]],
        ushort lane  [[thread_index_in_simdgroup]],
        ushort warp  [[simdgroup_index_in_threadgroup]]) {
    threadgroup float xs[G * XQ_ATTN_STRIDE];                    // one group of the tile's X̂
    threadgroup float kv[OP_XQ_ATTN_MAX_HEAD_DIM * XQ_ATTN_STRIDE]; // the tile's K, then plain V
    threadgroup float p[OP_XQ_ATTN_ROWS * OP_XQ_ATTN_CELLS];           // scores, then softmax weights
    threadgroup float row_max[OP_XQ_ATTN_ROWS];
    threadgroup float row_sum[OP_XQ_ATTN_ROWS];
    threadgroup float corr[OP_XQ_ATTN_ROWS];
    threadgroup int exact_of[OP_XQ_ATTN_CELLS];
    // one "some row sees the tile" flag per tile in rotation: the flag of tile i + 1 is
    // cleared during tile i, after every read of it for tile i - 2
    threadgroup int visible[3];

    const int n_head_kv = args.n_head / args.n_gqa;
    const int hk = tgpig.x % n_head_kv;
    const int t0 = tgpig.x / n_head_kv * args.tokens_per_block;
    const int n_tok = min(args.tokens_per_block, args.n_tokens - t0);
    const int n_rows = n_tok * args.n_gqa;
    const int split = tgpig.y;
    const int64_t D = args.head_dim;
    device float * partial = (device float *) tmp;
    device float * max_sum = partial + (int64_t) args.n_splits * args.n_tokens * args.n_head * args.out_width;

    for (int idx = tid; idx < n_rows * args.out_width; idx += OP_XQ_ATTN_THREADS) {
        partial[xq_attn_pair(args, split, t0, hk, idx / args.out_width) * args.out_width + idx % args.out_width] = 0.0f;
    }
    if (tid < n_rows) {
        row_max[tid] = XQ_ATTN_NONE;
        row_sum[tid] = 0.0f;
    }
    if (tid < 3) {
        visible[tid] = 0;
    }
    // other threads accumulate onto these zeros: device memory needs its own fence
    threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);

    const int tile0 = split * args.tiles_per_split;
    const int n_tiles = (args.n_kv + OP_XQ_ATTN_CELLS - 1) / OP_XQ_ATTN_CELLS;
    const int tile1 = min(tile0 + args.tiles_per_split, n_tiles);
    for (int tile = tile0; tile < tile1; ++tile) {
        const int cell0 = tile * OP_XQ_ATTN_CELLS;
        const int cells = min(OP_XQ_ATTN_CELLS, args.n_kv - cell0);
        // tiles that no row sees (other sequences, outside a window, empty cells) cost nothing
        threadgroup int * seen = &visible[(tile - tile0) % 3];
        if (tid == 0) {
            visible[(tile - tile0 + 1) % 3] = 0;
        }
        for (int idx = tid; idx < n_tok * cells; idx += OP_XQ_ATTN_THREADS) {
            if (xq_attn_mask(args, mask, t0 + idx / cells, cell0 + idx % cells) > XQ_ATTN_NONE) {
                *seen = 1;
            }
        }
        if (tid < OP_XQ_ATTN_CELLS) {
            exact_of[tid] = -1;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (!*seen) {
            continue;
        }
        for (int t = tid; t < args.n_exact; t += OP_XQ_ATTN_THREADS) {
            const int64_t cell = args.idx64 ? ((device const int64_t *) idxs)[t] : (int64_t) ((device const int32_t *) idxs)[t];
            if (cell >= cell0 && cell < cell0 + cells) {
                exact_of[cell - cell0] = t;
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);

        // 1. K = w_k X̂[0 : k_width], group by group
        for (int g = 0; g * G < args.k_width; ++g) {
            xq_attn_load_group<G>(args, storage, exact, cell0, cells, g, exact_of, xs, lane, warp);
            threadgroup_barrier(mem_flags::mem_threadgroup);
            xq_attn_project(args, (device const TW *) wk, args.ldwk, hk * D, g * G, 0, min(G, args.k_width - g * G), g == 0, xs, kv, tid);
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
        for (int c = tid; c < cells; c += OP_XQ_ATTN_THREADS) {
            xq_attn_finish_k(args, (device const float *) k_bias, (device const float *) k_norm, (device const float *) rope_factors,
                hk, ((device const int32_t *) cell_pos)[cell0 + c], kv, c);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);

        // 2. scores and the online softmax
        for (int idx = tid; idx < n_rows * OP_XQ_ATTN_CELLS; idx += OP_XQ_ATTN_THREADS) {
            const int r = idx / OP_XQ_ATTN_CELLS;
            const int c = idx % OP_XQ_ATTN_CELLS;
            const int t = t0 + r / args.n_gqa;
            float s = XQ_ATTN_NONE;
            const float m = c < cells ? xq_attn_mask(args, mask, t, cell0 + c) : XQ_ATTN_NONE;
            if (m > XQ_ATTN_NONE) {
                device const float * qr = (device const float *) (q + t * args.nb_q2 + (hk * args.n_gqa + r % args.n_gqa) * args.nb_q1);
                float dot = 0.0f;
                for (int d = 0; d < D; ++d) {
                    dot += qr[d] * kv[d * XQ_ATTN_STRIDE + c];
                }
                s = dot * args.kq_scale + m;
            }
            p[r * OP_XQ_ATTN_CELLS + c] = s;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (int r = tid; r < n_rows; r += OP_XQ_ATTN_THREADS) {
            float tile_max = XQ_ATTN_NONE;
            for (int c = 0; c < OP_XQ_ATTN_CELLS; ++c) {
                tile_max = max(tile_max, p[r * OP_XQ_ATTN_CELLS + c]);
            }
            // a row that sees no cell of the tile keeps its state; exp(-FLT_MAX - max) is 0
            const float new_max = max(row_max[r], tile_max);
            corr[r] = new_max == XQ_ATTN_NONE ? 1.0f : exp(row_max[r] - new_max);
            float sum = 0.0f;
            for (int c = 0; c < OP_XQ_ATTN_CELLS; ++c) {
                const float s = p[r * OP_XQ_ATTN_CELLS + c];
                p[r * OP_XQ_ATTN_CELLS + c] = s == XQ_ATTN_NONE ? 0.0f : exp(s - new_max);
                sum += p[r * OP_XQ_ATTN_CELLS + c];
            }
            row_sum[r] = row_sum[r] * corr[r] + sum;
            row_max[r] = new_max;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);

        // 3. the weighted V source (absorbed) or the weighted w_v X̂ (plain), group by group
        for (int g = args.v_offset / G; g * G < args.width; ++g) {
            const int lo = max(0, args.v_offset - g * G);
            xq_attn_load_group<G>(args, storage, exact, cell0, cells, g, exact_of, xs, lane, warp);
            threadgroup_barrier(mem_flags::mem_threadgroup);
            if (args.has_wv) {
                xq_attn_project(args, (device const TW *) wv, args.ldwv, hk * D, g * G - args.v_offset, lo, G, g == args.v_offset / G, xs, kv, tid);
            } else {
                xq_attn_accumulate(args, partial, split, t0, hk, n_rows, p, corr, xs, lo, G, g * G + lo - args.v_offset, tid);
            }
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
        if (args.has_wv) {
            xq_attn_accumulate(args, partial, split, t0, hk, n_rows, p, corr, kv, 0, args.head_dim, 0, tid);
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
    }

    if (tid < n_rows) {
        device float * ms = max_sum + 2 * xq_attn_pair(args, split, t0, hk, tid);
        ms[0] = row_max[tid];
        ms[1] = row_sum[tid];
    }
}

typedef decltype(kernel_xq_attn<128, float>) kernel_xq_attn_t;
template [[host_name("kernel_xq_attn_f32_g128")]] kernel kernel_xq_attn_t kernel_xq_attn<128, float>;
template [[host_name("kernel_xq_attn_f32_g64")]]  kernel kernel_xq_attn_t kernel_xq_attn<64,  float>;
template [[host_name("kernel_xq_attn_f32_g32")]]  kernel kernel_xq_attn_t kernel_xq_attn<32,  float>;
template [[host_name("kernel_xq_attn_f16_g128")]] kernel kernel_xq_attn_t kernel_xq_attn<128, half>;
template [[host_name("kernel_xq_attn_f16_g64")]]  kernel kernel_xq_attn_t kernel_xq_attn<64,  half>;
template [[host_name("kernel_xq_attn_f16_g32")]]  kernel kernel_xq_attn_t kernel_xq_attn<32,  half>;

// the splits of each (token, head) combined by their log-sum-exp into dst
// [out_width, n_tokens, n_head]: n_tokens * n_head threadgroups of OP_XQ_ATTN_THREADS
kernel void kernel_xq_attn_merge(
        constant ggml_metal_kargs_xq_attn & args,
        device const char * tmp,
        device       char * dst,
        uint   tgpig [[threadgroup_position_in_grid]],
        ushort tid   [[thread_index_in_threadgroup]]) {
    const int t = tgpig / args.n_head;
    const int h = tgpig % args.n_head;
    const int64_t split_stride = (int64_t) args.n_tokens * args.n_head;
    const int64_t pair = (int64_t) t * args.n_head + h;
    device const float * partial = (device const float *) tmp;
    device const float * max_sum = partial + args.n_splits * split_stride * args.out_width;
    float max_all = XQ_ATTN_NONE;
    for (int s = 0; s < args.n_splits; ++s) {
        max_all = max(max_all, max_sum[2 * (s * split_stride + pair)]);
    }
    float sum_all = 0.0f;
    for (int s = 0; s < args.n_splits && max_all != XQ_ATTN_NONE; ++s) {
        device const float * ms = max_sum + 2 * (s * split_stride + pair);
        sum_all += ms[0] == XQ_ATTN_NONE ? 0.0f : ms[1] * exp(ms[0] - max_all);
    }
    // no cell in view leaves a zero output, as softmax over nothing
    const float scale = sum_all > 0.0f ? 1.0f / sum_all : 0.0f;
    device float * out = (device float *) (dst + t * args.nb1 + h * args.nb2);
    for (int e = tid; e < args.out_width; e += OP_XQ_ATTN_THREADS) {
        float sum = 0.0f;
        for (int s = 0; s < args.n_splits && scale > 0.0f; ++s) {
            const float m = max_sum[2 * (s * split_stride + pair)];
            if (m != XQ_ATTN_NONE) {
                sum += partial[(s * split_stride + pair) * args.out_width + e] * exp(m - max_all);
            }
        }
        out[e] = sum * scale;
    }
}
