// XQuant X-cache row format and the graph constructors of its two ops
// (GGML_OP_XQ_SET_ROWS, GGML_OP_XQ_REBUILD). The CPU kernels are in
// ggml-cpu/xquant-ops.cpp, CUDA in ggml-cuda/xquant.cu, Metal in
// ggml-metal/kernels/xquant.metal. llama's xquant-quant.cpp calls the row
// functions below, so the X-cache and the ops store identical bytes.
#include "ggml-xquant.h"
#include "ggml-impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

int ggml_xq_group_size(int64_t n) {
    for (int group = GGML_XQ_GROUP_MAX; group >= 32; group /= 2) {
        if (n % group == 0) {
            return group;
        }
    }
    return 0;
}

bool ggml_xq_bits_supported(int bits) {
    return bits == 2 || bits == 3 || bits == 4 || bits == 8 || bits == 16;
}

static size_t group_bytes(int group, int bits) {
    return 2 * sizeof(ggml_fp16_t) + (size_t) group * bits / 8;
}

size_t ggml_xq_row_bytes(int64_t n, int bits) {
    if (bits == 16) {
        return (size_t) n * sizeof(ggml_fp16_t);
    }
    const int group = ggml_xq_group_size(n);
    return (size_t) (n / group) * group_bytes(group, bits);
}

// Dequantization runs over every cached cell at every decode step. ggml-base is
// built for any CPU of the architecture; on x86-64 Linux with GCC the hot loops
// also get an AVX2 clone, picked at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define XQ_HOT_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define XQ_HOT_LOOP
#endif

// The Walsh-Hadamard butterflies without the 1/sqrt(n) normalisation. The
// first three stages run as one unrolled 8-point transform per block, so that
// every remaining stage has inner loops of 8 or more, which vectorize.
XQ_HOT_LOOP
static void hadamard_unscaled(float * x, int n) {
    int h = 1;
    if (n >= 8) {
        for (int i = 0; i < n; i += 8) {
            float * b = x + i;
            const float s0 = b[0] + b[1], d0 = b[0] - b[1], s1 = b[2] + b[3], d1 = b[2] - b[3];
            const float s2 = b[4] + b[5], d2 = b[4] - b[5], s3 = b[6] + b[7], d3 = b[6] - b[7];
            const float t0 = s0 + s1, t1 = d0 + d1, t2 = s0 - s1, t3 = d0 - d1;
            const float t4 = s2 + s3, t5 = d2 + d3, t6 = s2 - s3, t7 = d2 - d3;
            b[0] = t0 + t4; b[1] = t1 + t5; b[2] = t2 + t6; b[3] = t3 + t7;
            b[4] = t0 - t4; b[5] = t1 - t5; b[6] = t2 - t6; b[7] = t3 - t7;
        }
        h = 8;
    }
    for (; h < n; h *= 2) {
        for (int i = 0; i < n; i += 2 * h) {
            for (int j = i; j < i + h; ++j) {
                const float u = x[j];
                const float v = x[j + h];
                x[j] = u + v;
                x[j + h] = u - v;
            }
        }
    }
}

// Rotating each group before quantizing spreads the outlier channels of X over
// the group, which shrinks its min-max range.
void ggml_xq_hadamard(float * x, int n) {
    hadamard_unscaled(x, n);
    const float scale = 1.0f / std::sqrt((float) n);
    for (int i = 0; i < n; ++i) {
        x[i] *= scale;
    }
}

// codes are packed little-endian into a bit stream; a group of 32 or more
// codes at 3 bits ends on a byte boundary (32 * 3 = 96 bits)
static void pack_codes(const uint8_t * codes, uint8_t * dst, int n, int bits) {
    std::memset(dst, 0, (size_t) n * bits / 8);
    for (int i = 0; i < n; ++i) {
        const int bit = i * bits;
        const uint32_t value = (uint32_t) codes[i] << (bit % 8);
        dst[bit / 8] |= (uint8_t) value;
        if ((bit % 8) + bits > 8) {
            dst[bit / 8 + 1] |= (uint8_t) (value >> 8);
        }
    }
}

static uint8_t unpack_code(const uint8_t * src, int i, int bits) {
    const int bit = i * bits;
    uint32_t value = src[bit / 8];
    if ((bit % 8) + bits > 8) {
        value |= (uint32_t) src[bit / 8 + 1] << 8;
    }
    return (uint8_t) ((value >> (bit % 8)) & ((1u << bits) - 1));
}

// A group's values are Gaussian-like once rotated, and min-max scaling spends the few levels
// of 2-3 bits on two extreme values: a range clipped about its centre, with the extremes
// clamped, rounds every other value finer. Each group keeps whichever of 16/16, 15/16, ...,
// 8/16 of its range leaves the least squared error (at 2 bits about half of min-max's,
// docs/results.md). The GPU kernels make the same choice with the same arithmetic: the
// error is summed as a warp sums it (per lane over channels lane + 32k, then an xor
// butterfly), so every backend stores the same bytes.
struct xq_group_params {
    ggml_fp16_t scale;
    ggml_fp16_t min;
};

static float lane_order_sum(const float * e, int group) {
    float lanes[32];
    for (int lane = 0; lane < 32; ++lane) {
        lanes[lane] = e[lane];
        for (int i = lane + 32; i < group; i += 32) {
            lanes[lane] += e[i];
        }
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        float next[32];
        for (int lane = 0; lane < 32; ++lane) {
            next[lane] = lanes[lane] + lanes[lane ^ offset];
        }
        std::memcpy(lanes, next, sizeof(lanes));
    }
    return lanes[0];
}

static xq_group_params choose_group_params(const float * x, int group, int levels) {
    float lo = x[0];
    float hi = x[0];
    for (int i = 1; i < group; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    const float centre = 0.5f * (lo + hi);
    xq_group_params best = {};
    float best_error = INFINITY;
    float e[GGML_XQ_GROUP_MAX];
    for (int step = 0; step < GGML_XQ_CLIP_STEPS; ++step) {
        const float keep = 1.0f - 0.0625f * step;
        // quantize against the fp16-rounded scale and min that dequantization will see
        const xq_group_params candidate = { ggml_fp32_to_fp16(keep * (hi - lo) / levels), ggml_fp32_to_fp16(centre - keep * (centre - lo)) };
        const float scale = ggml_fp16_to_fp32(candidate.scale);
        const float min   = ggml_fp16_to_fp32(candidate.min);
        const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
        for (int i = 0; i < group; ++i) {
            const float q = std::clamp(std::nearbyint((x[i] - min) * inv_scale), 0.0f, (float) levels);
            const float d = (min + scale * q) - x[i];
            e[i] = d * d;
        }
        const float error = lane_order_sum(e, group);
        if (error < best_error) {
            best_error = error;
            best = candidate;
        }
    }
    return best;
}

void ggml_xq_quantize_row(const float * src, uint8_t * dst, int64_t n, int bits) {
    if (bits == 16) {
        ggml_fp32_to_fp16_row(src, (ggml_fp16_t *) dst, n);
        return;
    }
    const int group = ggml_xq_group_size(n);
    const int levels = (1 << bits) - 1;
    uint8_t codes[GGML_XQ_GROUP_MAX];
    float x[GGML_XQ_GROUP_MAX];
    for (int64_t g0 = 0; g0 < n; g0 += group) {
        std::memcpy(x, src + g0, group * sizeof(float));
        ggml_xq_hadamard(x, group);
        const xq_group_params params = choose_group_params(x, group, levels);
        const float scale = ggml_fp16_to_fp32(params.scale);
        const float min   = ggml_fp16_to_fp32(params.min);
        const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
        for (int i = 0; i < group; ++i) {
            const float q = std::nearbyint((x[i] - min) * inv_scale);
            codes[i] = (uint8_t) std::clamp(q, 0.0f, (float) levels);
        }
        std::memcpy(dst, &params.scale, sizeof(params.scale));
        std::memcpy(dst + sizeof(params.scale), &params.min, sizeof(params.min));
        pack_codes(codes, dst + 2 * sizeof(ggml_fp16_t), group, bits);
        dst += group_bytes(group, bits);
    }
}

// One group's values before the rotation, min + scale * code, written to dst (or, with add,
// added to it). Byte-aligned widths unpack without the bit stream's shifts, so the loops vectorize.
template <bool add>
XQ_HOT_LOOP
static void unpack_group(const uint8_t * codes, float * dst, int group, int bits, float scale, float min) {
    const auto put = [dst](int i, float value) { dst[i] = add ? dst[i] + value : value; };
    switch (bits) {
        case 8:
            for (int i = 0; i < group; ++i) {
                put(i, min + scale * codes[i]);
            }
            break;
        case 4:
            for (int i = 0; i < group / 2; ++i) {
                put(2 * i,     min + scale * (codes[i] & 0x0F));
                put(2 * i + 1, min + scale * (codes[i] >> 4));
            }
            break;
        case 2:
            for (int i = 0; i < group / 4; ++i) {
                for (int k = 0; k < 4; ++k) {
                    put(4 * i + k, min + scale * ((codes[i] >> (2 * k)) & 0x03));
                }
            }
            break;
        default:
            for (int i = 0; i < group; ++i) {
                put(i, min + scale * unpack_code(codes, i, bits));
            }
    }
}

// each group's values before the rotation, the rotation's 1/sqrt(group) in the scale and min
template <bool add>
static void unpack_row(const uint8_t * src, float * dst, int64_t n, int bits) {
    const int group = ggml_xq_group_size(n);
    const float norm = 1.0f / std::sqrt((float) group);
    for (int64_t g0 = 0; g0 < n; g0 += group) {
        ggml_fp16_t scale_h;
        ggml_fp16_t min_h;
        std::memcpy(&scale_h, src, sizeof(scale_h));
        std::memcpy(&min_h, src + sizeof(scale_h), sizeof(min_h));
        // the inline conversion: the exported one is a call through the PLT, per group
        unpack_group<add>(src + 2 * sizeof(ggml_fp16_t), dst + g0, group, bits, norm * GGML_FP16_TO_FP32(scale_h), norm * GGML_FP16_TO_FP32(min_h));
        src += group_bytes(group, bits);
    }
}

void ggml_xq_unrotate_row(float * rotated, int64_t n) {
    const int group = ggml_xq_group_size(n);
    for (int64_t g0 = 0; g0 < n; g0 += group) {
        hadamard_unscaled(rotated + g0, group);
    }
}

void ggml_xq_dequantize_row(const uint8_t * src, float * dst, int64_t n, int bits) {
    if (bits == 16) {
        ggml_fp16_to_fp32_row((const ggml_fp16_t *) src, dst, n);
        return;
    }
    unpack_row<false>(src, dst, n, bits);
    ggml_xq_unrotate_row(dst, n);
}

void ggml_xq_dequantize_row_add(const uint8_t * src, float * rotated, float * plain, int64_t n, int bits) {
    if (bits != 16) {
        unpack_row<true>(src, rotated, n, bits);
        return;
    }
    const ggml_fp16_t * values = (const ggml_fp16_t *) src;
    for (int64_t i = 0; i < n; ++i) {
        plain[i] += GGML_FP16_TO_FP32(values[i]);
    }
}

// both ops carry op_params {bits, n} and up to four sources
static struct ggml_tensor * xq_op(struct ggml_tensor * result, enum ggml_op op, int bits, int64_t n,
        struct ggml_tensor * src0, struct ggml_tensor * src1, struct ggml_tensor * src2, struct ggml_tensor * src3) {
    // op param 2 (transposed output) is 0 unless ggml_xq_load_transposed sets it
    const int32_t params[] = { bits, (int32_t) n, 0 };
    ggml_set_op_params(result, params, sizeof(params));
    result->op     = op;
    result->src[0] = src0;
    result->src[1] = src1;
    result->src[2] = src2;
    result->src[3] = src3;
    return result;
}

// both stores: rows of f32 into the cells idxs, stored as rows of n channels at bits
static struct ggml_tensor * xq_set_rows_impl(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * base,
        int64_t               n,
        int                   bits) {
    GGML_ASSERT(ggml_xq_bits_supported(bits) && ggml_xq_group_size(n) > 0);
    GGML_ASSERT(rows->type == GGML_TYPE_F32 && ggml_is_contiguous_rows(rows) && ggml_nrows(rows) == rows->ne[1]);
    GGML_ASSERT((idxs->type == GGML_TYPE_I64 || idxs->type == GGML_TYPE_I32) && ggml_nelements(idxs) == rows->ne[1] && ggml_is_contiguous(idxs));
    GGML_ASSERT(ggml_is_contiguous(storage));
    // sources in ggml_set_rows' order: rows, indices, destination
    return xq_op(ggml_view_tensor(ctx, storage), GGML_OP_XQ_SET_ROWS, bits, n, rows, idxs, storage, base);
}

struct ggml_tensor * ggml_xq_set_rows(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * base,
        int                   bits) {
    GGML_ASSERT(base == nullptr || (base->op == GGML_OP_XQ_LAYERS ? ggml_xq_layers_width(base) == rows->ne[0] && base->src[2] == nullptr
        : base->type == GGML_TYPE_F32 && base->ne[0] == rows->ne[0] && base->nb[0] == sizeof(float)));
    return xq_set_rows_impl(ctx, storage, rows, idxs, base, rows->ne[0], bits);
}

struct ggml_tensor * ggml_xq_set_rows_projected(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * layers,
        struct ggml_tensor  * project,
        int                   bits) {
    GGML_ASSERT(layers->op == GGML_OP_XQ_LAYERS && layers->src[2] != nullptr && ggml_xq_layers_width(layers) == rows->ne[0]);
    GGML_ASSERT(project->type == GGML_TYPE_F32 && project->ne[0] == rows->ne[0] && ggml_is_contiguous(project));
    struct ggml_tensor * result = xq_set_rows_impl(ctx, storage, rows, idxs, layers, project->ne[1], bits);
    result->src[4] = project;
    return result;
}

static struct ggml_tensor * xq_rebuild_impl(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * w,
        struct ggml_tensor  * bias,
        struct ggml_tensor  * base,
        int64_t               n,
        int64_t               n_kv,
        int                   bits) {
    GGML_ASSERT(ggml_xq_bits_supported(bits) && ggml_xq_group_size(n) > 0);
    GGML_ASSERT(ggml_is_contiguous(storage) && ggml_nbytes(storage) >= (size_t) n_kv * ggml_xq_row_bytes(n, bits));
    GGML_ASSERT(w == nullptr || (w->ne[0] == n && ggml_is_contiguous(w) && ggml_nrows(w) == w->ne[1]));
    GGML_ASSERT(bias == nullptr || (w != nullptr && bias->type == GGML_TYPE_F32 && ggml_nelements(bias) == w->ne[1] && ggml_is_contiguous(bias)));
    GGML_ASSERT(base == nullptr || (base->type == GGML_TYPE_F32 && base->ne[0] == n && base->ne[1] >= n_kv && base->nb[0] == sizeof(float)));

    return xq_op(ggml_new_tensor_2d(ctx, GGML_TYPE_F32, w ? w->ne[1] : n, n_kv), GGML_OP_XQ_REBUILD, bits, n, storage, w, bias, base);
}

struct ggml_tensor * ggml_xq_rebuild(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * w,
        struct ggml_tensor  * bias,
        int64_t               n_kv,
        int                   bits) {
    GGML_ASSERT(w != nullptr);
    return xq_rebuild_impl(ctx, storage, w, bias, nullptr, w->ne[0], n_kv, bits);
}

struct ggml_tensor * ggml_xq_load(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * base,
        int64_t               n,
        int64_t               n_kv,
        int                   bits) {
    return xq_rebuild_impl(ctx, storage, nullptr, nullptr, base, n, n_kv, bits);
}

struct ggml_tensor * ggml_xq_load_transposed(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * exact_rows,
        struct ggml_tensor  * idxs,
        int64_t               n,
        int64_t               n_kv,
        int                   bits) {
    GGML_ASSERT((exact_rows == nullptr) == (idxs == nullptr));
    GGML_ASSERT(exact_rows == nullptr || (exact_rows->type == GGML_TYPE_F32 && exact_rows->ne[0] == n && exact_rows->nb[0] == sizeof(float)
        && (idxs->type == GGML_TYPE_I64 || idxs->type == GGML_TYPE_I32) && ggml_nelements(idxs) == exact_rows->ne[1] && ggml_is_contiguous(idxs)));
    struct ggml_tensor * loaded = xq_rebuild_impl(ctx, storage, nullptr, nullptr, nullptr, n, n_kv, bits);
    loaded->src[1] = exact_rows;
    loaded->src[2] = idxs;
    // same op and sources, the shape swapped: [n_kv, n]
    loaded->ne[0] = n_kv;
    loaded->ne[1] = n;
    loaded->nb[1] = loaded->nb[0] * n_kv;
    loaded->nb[2] = loaded->nb[3] = loaded->nb[1] * n;
    ggml_set_op_params_i32(loaded, 2, 1);
    return loaded;
}

bool ggml_xq_is_transposed(const struct ggml_tensor * op) {
    return op->op == GGML_OP_XQ_REBUILD && ggml_get_op_params_i32(op, 2) != 0;
}

struct ggml_tensor * ggml_xq_layers(
        struct ggml_context * ctx,
        struct ggml_tensor  * prev,
        struct ggml_tensor  * stored,
        int64_t               n,
        int                   bits) {
    GGML_ASSERT(stored->op == GGML_OP_XQ_SET_ROWS && ggml_get_op_params_i32(stored, 1) == n && ggml_get_op_params_i32(stored, 0) == bits);
    GGML_ASSERT(prev == nullptr || (prev->op == GGML_OP_XQ_LAYERS && prev->src[2] == nullptr && ggml_get_op_params_i32(prev, 1) == n));
    // a one-element placeholder: the list is its sources
    return xq_op(ggml_new_tensor_1d(ctx, GGML_TYPE_I32, 1), GGML_OP_XQ_LAYERS, bits, n, prev, stored, nullptr, nullptr);
}

struct ggml_tensor * ggml_xq_layers_lifted(
        struct ggml_context * ctx,
        struct ggml_tensor  * prev,
        struct ggml_tensor  * stored,
        struct ggml_tensor  * lift,
        int64_t               n,
        int                   bits) {
    GGML_ASSERT(stored->op == GGML_OP_XQ_SET_ROWS && ggml_get_op_params_i32(stored, 1) == n && ggml_get_op_params_i32(stored, 0) == bits);
    GGML_ASSERT(lift->type == GGML_TYPE_F32 && lift->ne[0] == n && ggml_is_contiguous(lift));
    GGML_ASSERT(prev == nullptr || (prev->op == GGML_OP_XQ_LAYERS && prev->src[2] != nullptr && ggml_xq_layers_width(prev) == lift->ne[1]));
    return xq_op(ggml_new_tensor_1d(ctx, GGML_TYPE_I32, 1), GGML_OP_XQ_LAYERS, bits, n, prev, stored, lift, nullptr);
}

int64_t ggml_xq_layers_width(const struct ggml_tensor * layers) {
    GGML_ASSERT(layers->op == GGML_OP_XQ_LAYERS);
    return layers->src[2] ? layers->src[2]->ne[1] : ggml_get_op_params_i32(layers, 1);
}

struct ggml_tensor * ggml_xq_layers_load(
        struct ggml_context * ctx,
        struct ggml_tensor  * layers,
        int64_t               n_kv) {
    GGML_ASSERT(layers->op == GGML_OP_XQ_LAYERS);
    struct ggml_tensor * prev = layers->src[0] ? ggml_xq_layers_load(ctx, layers->src[0], n_kv) : nullptr;
    struct ggml_tensor * lift = layers->src[2];
    if (lift) {
        // as GQA-CL's GEMM path: the sum so far plus this layer's latent through its lift
        struct ggml_tensor * lifted = ggml_mul_mat(ctx, lift, ggml_xq_load(ctx, layers->src[1], nullptr, lift->ne[0], n_kv, ggml_get_op_params_i32(layers, 0)));
        return prev ? ggml_add(ctx, prev, lifted) : lifted;
    }
    return ggml_xq_load(ctx, layers->src[1], prev, ggml_get_op_params_i32(layers, 1), n_kv, ggml_get_op_params_i32(layers, 0));
}

static int xq_attn_optional_count(const struct ggml_tensor * wv, const struct ggml_tensor * k_bias,
        const struct ggml_tensor * k_norm, const struct ggml_tensor * rope_factors) {
    return (wv != nullptr) + (k_bias != nullptr) + (k_norm != nullptr) + (rope_factors != nullptr);
}

bool ggml_xq_attn_fits(const struct ggml_tensor * wv, const struct ggml_tensor * k_bias,
        const struct ggml_tensor * k_norm, const struct ggml_tensor * rope_factors) {
    return xq_attn_optional_count(wv, k_bias, k_norm, rope_factors) <= GGML_XQ_ATTN_MAX_OPTIONAL;
}

bool ggml_xq_attn_cross_layer_fits(const struct ggml_tensor * wv, const struct ggml_tensor * k_bias,
        const struct ggml_tensor * k_norm, const struct ggml_tensor * rope_factors) {
    return xq_attn_optional_count(wv, k_bias, k_norm, rope_factors) + 2 <= GGML_XQ_ATTN_MAX_OPTIONAL;
}

// The optional sources sit from GGML_XQ_ATTN_FIRST_OPTIONAL on, in their flags' order (the
// kernels find each by counting the flags before it): setting one re-packs them.
static void xq_attn_set_optional(struct ggml_tensor * attn, int flag, struct ggml_tensor * tensor) {
    static const int flags[] = { GGML_XQ_ATTN_HAS_WV, GGML_XQ_ATTN_HAS_K_BIAS, GGML_XQ_ATTN_HAS_K_NORM,
        GGML_XQ_ATTN_HAS_ROPE_FACTORS, GGML_XQ_ATTN_HAS_LAYERS, GGML_XQ_ATTN_HAS_X_NORM };
    struct ggml_xq_attn_params params = ggml_xq_attn_get_params(attn);
    struct ggml_tensor * optional[6] = {};
    int slot = GGML_XQ_ATTN_FIRST_OPTIONAL;
    for (int i = 0; i < 6; ++i) {
        if (params.flags & flags[i]) {
            optional[i] = attn->src[slot++];
        }
        if (flags[i] == flag) {
            optional[i] = tensor;
        }
    }
    params.flags = tensor ? params.flags | flag : params.flags & ~flag;
    slot = GGML_XQ_ATTN_FIRST_OPTIONAL;
    for (int i = 0; i < 6; ++i) {
        if (optional[i]) {
            GGML_ASSERT(slot < GGML_MAX_SRC && "too many optional sources: ggml_xq_attn_fits");
            attn->src[slot++] = optional[i];
        }
    }
    for (; slot < GGML_MAX_SRC; ++slot) {
        attn->src[slot] = nullptr;
    }
    ggml_set_op_params(attn, &params, sizeof(params));
}

struct ggml_tensor * ggml_xq_attn(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * q,
        struct ggml_tensor  * wk,
        struct ggml_tensor  * wv,
        struct ggml_tensor  * cells,
        int64_t               width,
        int                   bits,
        float                 kq_scale,
        const struct ggml_xq_attn_rope * rope) {
    const int64_t n_kv = cells->ne[0];
    const int64_t head_dim = q->ne[0];
    const int64_t n_head = q->ne[1];
    const int64_t n_tokens = q->ne[2];
    GGML_ASSERT(ggml_xq_bits_supported(bits) && ggml_xq_group_size(width) > 0);
    if (storage->op == GGML_OP_XQ_LAYERS) {
        GGML_ASSERT(storage->src[2] != nullptr && ggml_xq_layers_width(storage) == width);
    } else {
        GGML_ASSERT(ggml_is_contiguous(storage) && ggml_nbytes(storage) >= (size_t) n_kv * ggml_xq_row_bytes(width, bits));
    }
    GGML_ASSERT(q->type == GGML_TYPE_F32 && q->nb[0] == sizeof(float) && q->ne[3] == 1);
    GGML_ASSERT(wk->ne[0] <= width && ggml_is_contiguous(wk) && wk->ne[1] % head_dim == 0 && n_head % (wk->ne[1] / head_dim) == 0);
    // V's source: the whole row where K reads all of it, else the channels after K's
    const int64_t v_width = wk->ne[0] < width ? width - wk->ne[0] : width;
    GGML_ASSERT(wv == nullptr || (wv->ne[0] == v_width && wv->ne[1] == wk->ne[1] && ggml_is_contiguous(wv)));
    GGML_ASSERT(rope->mode == GGML_ROPE_TYPE_NORMAL || rope->mode == GGML_ROPE_TYPE_NEOX);
    GGML_ASSERT(rope->n_rot % 2 == 0 && rope->n_rot <= head_dim);
    GGML_ASSERT(cells->type == GGML_TYPE_I32 && cells->nb[0] == sizeof(int32_t));

    const int64_t out_width = wv ? head_dim : v_width;
    struct ggml_tensor * result = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, out_width, n_tokens, n_head);
    struct ggml_xq_attn_params params = {};
    params.bits = bits;
    params.width = (int32_t) width;
    params.v_width = (int32_t) v_width;
    params.kq_scale = kq_scale;
    params.rope = *rope;
    static_assert(sizeof(params) <= GGML_MAX_OP_PARAMS, "XQ_ATTN's parameters must fit op_params");
    ggml_set_op_params(result, &params, sizeof(params));
    result->op = GGML_OP_XQ_ATTN;
    result->src[0] = storage;
    result->src[1] = q;
    result->src[2] = wk;
    result->src[3] = cells;
    xq_attn_set_optional(result, GGML_XQ_ATTN_HAS_WV, wv);
    return result;
}

void ggml_xq_attn_set_mask(struct ggml_tensor * attn, struct ggml_tensor * mask) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT((mask->type == GGML_TYPE_F32 || mask->type == GGML_TYPE_F16) && mask->ne[0] >= attn->src[3]->ne[0] && mask->ne[1] >= attn->src[1]->ne[2]);
    GGML_ASSERT(ggml_is_contiguous(attn->src[3]));
    attn->src[4] = mask;
}

void ggml_xq_attn_set_visibility(struct ggml_tensor * attn, struct ggml_tensor * tokens) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT(tokens->type == GGML_TYPE_I32 && tokens->ne[0] == 3 && tokens->nb[0] == sizeof(int32_t) && tokens->ne[1] >= attn->src[1]->ne[2]);
    GGML_ASSERT(attn->src[3]->ne[1] >= 2);
    attn->src[4] = tokens;
}

void ggml_xq_attn_set_exact_rows(struct ggml_tensor * attn, struct ggml_tensor * exact_rows, struct ggml_tensor * idxs) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT(exact_rows->type == GGML_TYPE_F32 && exact_rows->ne[0] == ggml_xq_attn_get_params(attn).width && exact_rows->nb[0] == sizeof(float));
    GGML_ASSERT((idxs->type == GGML_TYPE_I64 || idxs->type == GGML_TYPE_I32) && ggml_nelements(idxs) == exact_rows->ne[1] && ggml_is_contiguous(idxs));
    attn->src[5] = exact_rows;
    attn->src[6] = idxs;
}

void ggml_xq_attn_set_k_bias(struct ggml_tensor * attn, struct ggml_tensor * k_bias) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT(k_bias->type == GGML_TYPE_F32 && ggml_nelements(k_bias) == attn->src[2]->ne[1] && ggml_is_contiguous(k_bias));
    xq_attn_set_optional(attn, GGML_XQ_ATTN_HAS_K_BIAS, k_bias);
}

void ggml_xq_attn_set_k_norm(struct ggml_tensor * attn, struct ggml_tensor * k_norm, float eps) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT(k_norm->type == GGML_TYPE_F32 && ggml_nelements(k_norm) == attn->src[1]->ne[0] && ggml_is_contiguous(k_norm));
    xq_attn_set_optional(attn, GGML_XQ_ATTN_HAS_K_NORM, k_norm);
    struct ggml_xq_attn_params params = ggml_xq_attn_get_params(attn);
    params.k_norm_eps = eps;
    ggml_set_op_params(attn, &params, sizeof(params));
}

void ggml_xq_attn_set_rope_factors(struct ggml_tensor * attn, struct ggml_tensor * rope_factors) {
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN);
    GGML_ASSERT(rope_factors->type == GGML_TYPE_F32 && rope_factors->ne[0] >= ggml_xq_attn_get_params(attn).rope.n_rot / 2);
    xq_attn_set_optional(attn, GGML_XQ_ATTN_HAS_ROPE_FACTORS, rope_factors);
}

struct ggml_tensor * ggml_xq_attn_cross_layer(
        struct ggml_tensor  * attn,
        struct ggml_tensor  * layers,
        struct ggml_tensor  * x_norm,
        float                 eps) {
    struct ggml_xq_attn_params params = ggml_xq_attn_get_params(attn);
    GGML_ASSERT(attn->op == GGML_OP_XQ_ATTN && (params.flags & (GGML_XQ_ATTN_HAS_LAYERS | GGML_XQ_ATTN_HAS_X_NORM)) == 0);
    GGML_ASSERT(attn->src[0]->op != GGML_OP_XQ_LAYERS);
    GGML_ASSERT(layers == nullptr || (layers->op == GGML_OP_XQ_LAYERS && layers->src[2] == nullptr && ggml_get_op_params_i32(layers, 1) == params.width));
    GGML_ASSERT(x_norm->type == GGML_TYPE_F32 && ggml_nelements(x_norm) == params.width && ggml_is_contiguous(x_norm));
    xq_attn_set_optional(attn, GGML_XQ_ATTN_HAS_LAYERS, layers);
    xq_attn_set_optional(attn, GGML_XQ_ATTN_HAS_X_NORM, x_norm);
    params = ggml_xq_attn_get_params(attn);
    params.x_norm_eps = eps;
    ggml_set_op_params(attn, &params, sizeof(params));
    return attn;
}

bool ggml_xq_attn_gpu_supported(const struct ggml_tensor * op, int64_t max_head_dim, int64_t max_rows,
        bool (*converts_to_f16)(enum ggml_type type)) {
    const ggml_xq_attn_params p = ggml_xq_attn_get_params(op);
    // other flags belong to variants the GPU kernels do not take
    const int known = GGML_XQ_ATTN_HAS_WV | GGML_XQ_ATTN_HAS_K_BIAS | GGML_XQ_ATTN_HAS_K_NORM | GGML_XQ_ATTN_HAS_ROPE_FACTORS;
    if ((p.flags & ~known) != 0 || !ggml_xq_bits_supported(p.bits) || ggml_xq_group_size(p.width) == 0) {
        return false;
    }
    // the mask's n_kv x n_tokens form only, and storage itself (not a lifted layer list)
    if (op->src[4]->type == GGML_TYPE_I32 || op->src[0]->op == GGML_OP_XQ_LAYERS) {
        return false;
    }
    const ggml_tensor * q = op->src[1];
    const ggml_tensor * wk = op->src[2];
    const ggml_tensor * wv = p.flags & GGML_XQ_ATTN_HAS_WV ? op->src[GGML_XQ_ATTN_FIRST_OPTIONAL] : nullptr;
    // f32 or f16 weights of one type as they are; any other mix only through f16 copies
    const bool as_they_are = (wk->type == GGML_TYPE_F32 || wk->type == GGML_TYPE_F16) && (!wv || wv->type == wk->type);
    const auto as_f16 = [converts_to_f16](const ggml_tensor * w) {
        return w == nullptr || w->type == GGML_TYPE_F16 || converts_to_f16(w->type);
    };
    if (!as_they_are && (converts_to_f16 == nullptr || !as_f16(wk) || !as_f16(wv))) {
        return false;
    }
    // a tile's K sits in shared memory, and a block's query rows hold at least one token's heads
    const int64_t head_dim = q->ne[0];
    if (head_dim > max_head_dim || q->ne[1] / (wk->ne[1] / head_dim) > max_rows) {
        return false;
    }
    // q, the mask and the exact rows are read through their row strides; the rest must be contiguous
    for (int i = 0; i < GGML_MAX_SRC; ++i) {
        const ggml_tensor * src = op->src[i];
        const bool strided_rows = i == 1 || i == 4 || i == 5;
        if (src && (strided_rows ? src->nb[0] != ggml_type_size(src->type) : !ggml_is_contiguous(src))) {
            return false;
        }
    }
    return true;
}

struct ggml_xq_attn_params ggml_xq_attn_get_params(const struct ggml_tensor * op) {
    struct ggml_xq_attn_params params;
    std::memcpy(&params, op->op_params, sizeof(params));
    return params;
}
