// CPU kernel of GGML_OP_XQ_ATTN (ggml-xquant.h): attention straight from the
// X-cache, flash-decoding style. The threads walk the cells in blocks: together
// they dequantize a block and rebuild its K (and V unless it is absorbed) with
// ggml's own GEMM kernels, then each folds the block into the online softmax of
// its share of the (token, head) pairs. Scratch is one block of cells plus one
// accumulator per token and head, whatever the context length.
#include "xquant-ops.h"
#include "ggml-cpu-impl.h"
#include "ggml-cpu.h"
#include "ggml-xquant.h"
#include "vec.h"
#if GGML_USE_LLAMAFILE
#include "llamafile/sgemm.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

namespace {

// Cells per block: X̂ of a block is about 1 MiB (128 cells of 2048 channels, 1024 of 256),
// so a block stays in L2 while its per-block costs (five barriers, GEMM tiling) are spread
// over enough work.
int64_t block_cells_for(int64_t width) {
    return std::clamp<int64_t>((int64_t{1} << 18) / width / 16 * 16, 32, 1024);
}
constexpr size_t scratch_align = 64;
// from this many query tokens (with V rebuilt, i.e. a prefill ubatch) the scores and the
// weighted V of a block are GEMMs over all tokens of a head, as flash attention tiles queries
constexpr int64_t tile_min_tokens = 16;
// sgemm's depth (cells in the P·V GEMM) must be a multiple of its vector width
constexpr int64_t tile_cell_pad = 16;
// pairs (token, head) per P·V GEMM outside the tiled form: its result's scratch
constexpr int64_t fold_pairs = 32;

int64_t padded_cells(int64_t cells) {
    return (cells + tile_cell_pad - 1) / tile_cell_pad * tile_cell_pad;
}

size_t align_up(size_t n) {
    return (n + scratch_align - 1) / scratch_align * scratch_align;
}

// the CPUs where llamafile's sgemm has an f32 kernel (its F32 case), so where this build has one
#if GGML_USE_LLAMAFILE && (defined(__AVX__) || defined(__AVX512F__) || defined(__ARM_NEON))
constexpr bool has_f32_sgemm = true;
#else
constexpr bool has_f32_sgemm = false;
#endif

// Quantized weights go through the f32 sgemm: their rows are dequantized a panel of about
// 256 KiB (at least 16 rows) at a time, and each panel serves every cell of the block. Measured faster than
// their own kernels: 2.6x for Q4_1, which the tiled sgemm does not take (one vec_dot per row
// and cell), 1.1-1.2x for Q4_0 and Q8_0 (docs/performance.md).
bool dequantized_in_panels(const ggml_tensor * w) {
    return has_f32_sgemm && ggml_is_quantized(w->type);
}

int64_t panel_rows_for(int64_t width) {
    return std::max<int64_t>((int64_t{1} << 16) / width / 16 * 16, 16);
}

// the type a block's X̂ meets w in: f32 where w is f32 or dequantized in panels
ggml_type operand_type(const ggml_tensor * w) {
    return dequantized_in_panels(w) ? GGML_TYPE_F32 : ggml_get_type_traits_cpu(w->type)->vec_dot_type;
}

// Shapes, and the byte offsets of the scratch: the block's buffers and the softmax
// states are shared by the threads, a token's mask row and the RoPE table are each thread's own.
struct attn_plan {
    ggml_xq_attn_params p;
    const ggml_tensor * storage;
    const ggml_tensor * q;
    const ggml_tensor * wk;
    const int32_t * cell_pos;
    const uint32_t * cell_seqs = nullptr; // with the tokens' visibility instead of a mask: 32 sequences a row
    int64_t cell_seqs_row = 0;            // the rows' stride, in words
    const ggml_tensor * mask;
    const ggml_tensor * exact;
    const ggml_tensor * idxs;
    const ggml_tensor * wv = nullptr;
    const ggml_tensor * k_bias = nullptr;
    const ggml_tensor * k_norm = nullptr;
    const ggml_tensor * rope_factors = nullptr;
    const ggml_tensor * layers = nullptr;
    const ggml_tensor * x_norm = nullptr;

    int64_t n_kv, head_dim, n_head, n_tokens, d_kv, n_gqa, k_width, v_offset, out_width, state_width, block_cells;
    size_t row_bytes;

    size_t x_hat, k_dot, v_dot, w_panel, k, v, state, fold_weights, fold_corr, fold_v_t, fold_out, tile_mask, tile_scores, tile_v, tile_out, tile_corr, shared;
    bool tiled; // the queries tiled into GEMMs (prefill ubatches)
    bool lifted; // storage is a lifted layer list (GQA-CL): a cell's row is the list's sum
    size_t mask_row, rope, layer_rows, per_thread;
};

attn_plan plan_of(const ggml_tensor * dst) {
    attn_plan a;
    a.p = ggml_xq_attn_get_params(dst);
    a.storage = dst->src[0];
    a.q = dst->src[1];
    a.wk = dst->src[2];
    a.cell_pos = (const int32_t *) dst->src[3]->data;
    a.mask = dst->src[4];
    if (a.mask->type == GGML_TYPE_I32) {
        a.cell_seqs = (const uint32_t *) ((const char *) dst->src[3]->data + dst->src[3]->nb[1]);
        a.cell_seqs_row = dst->src[3]->nb[1] / sizeof(uint32_t);
    }
    a.exact = dst->src[5];
    a.idxs = dst->src[6];
    int slot = GGML_XQ_ATTN_FIRST_OPTIONAL;
    if (a.p.flags & GGML_XQ_ATTN_HAS_WV)           a.wv = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_K_BIAS)       a.k_bias = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_K_NORM)       a.k_norm = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_ROPE_FACTORS) a.rope_factors = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_LAYERS)       a.layers = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_X_NORM)       a.x_norm = dst->src[slot++];

    a.n_kv = dst->src[3]->ne[0];
    a.head_dim = a.q->ne[0];
    a.n_head = a.q->ne[1];
    a.n_tokens = a.q->ne[2];
    a.d_kv = a.wk->ne[1];
    a.n_gqa = a.n_head / (a.d_kv / a.head_dim);
    a.k_width = a.wk->ne[0];
    a.v_offset = a.p.width - a.p.v_width;
    a.out_width = dst->ne[0];
    a.state_width = a.out_width + 2; // running max, running sum, accumulator
    a.row_bytes = ggml_xq_row_bytes(a.p.width, a.p.bits);
    a.block_cells = block_cells_for(a.p.width);
    const int64_t block_cells = a.block_cells;

    const auto converted_bytes = [block_cells](const ggml_tensor * w, int64_t width) {
        const ggml_type type = w ? operand_type(w) : GGML_TYPE_F32;
        return type == GGML_TYPE_F32 ? 0 : block_cells * ggml_row_size(type, width);
    };
    const auto panel_bytes = [](const ggml_tensor * w, int64_t width) {
        return w && dequantized_in_panels(w) ? sizeof(float) * std::min(panel_rows_for(width), w->ne[1]) * width : 0;
    };
    size_t at = 0;
    auto take = [&](size_t bytes) { const size_t offset = at; at += align_up(bytes); return offset; };
    a.x_hat  = take(sizeof(float) * block_cells * a.p.width);
    a.k_dot  = take(converted_bytes(a.wk, a.k_width));
    a.v_dot  = take(converted_bytes(a.wv, a.p.v_width));
    a.w_panel = take(std::max(panel_bytes(a.wk, a.k_width), panel_bytes(a.wv, a.p.v_width)));
    a.k      = take(sizeof(float) * block_cells * a.d_kv);
    a.v      = take(a.wv ? sizeof(float) * block_cells * a.d_kv : 0);
    a.state  = take(sizeof(float) * a.n_tokens * a.n_head * a.state_width);
    a.tiled = a.wv != nullptr && a.n_tokens >= tile_min_tokens;
    a.fold_weights = take(a.tiled ? 0 : sizeof(float) * a.n_tokens * a.n_head * block_cells);
    a.fold_corr    = take(a.tiled ? 0 : sizeof(float) * a.n_tokens * a.n_head);
    a.fold_v_t     = take(a.tiled ? 0 : sizeof(float) * a.out_width * block_cells);
    a.fold_out     = take(a.tiled ? 0 : sizeof(float) * std::max(fold_pairs, a.n_gqa) * a.out_width);
    a.tile_mask   = take(a.tiled ? sizeof(float) * a.n_tokens * block_cells : 0);
    a.tile_scores = take(a.tiled ? sizeof(float) * a.n_tokens * block_cells : 0);
    a.tile_v      = take(a.tiled ? sizeof(float) * a.head_dim * block_cells : 0);
    a.tile_out    = take(a.tiled ? sizeof(float) * a.n_tokens * a.head_dim : 0);
    a.tile_corr   = take(a.tiled ? sizeof(float) * a.n_tokens : 0);
    a.shared = at;
    at = 0;
    a.mask_row = take(sizeof(float) * block_cells);
    a.rope   = take(sizeof(float) * a.head_dim);
    a.lifted = a.storage->op == GGML_OP_XQ_LAYERS;
    a.layer_rows = take(a.x_norm ? sizeof(float) * 2 * a.p.width : a.lifted ? sizeof(float) * ggml_xq_layers_scratch(a.storage) : 0);
    a.per_thread = at;
    return a;
}

// token t's mask at a cell: read from the mask, or, from the tokens' visibility, 0 where the
// cell's sequences hold the token's and its position is in the token's range, else -inf
float mask_at(const attn_plan & a, int64_t t, int64_t cell) {
    const char * row = (const char *) a.mask->data + t * a.mask->nb[1];
    if (a.cell_seqs) {
        const int32_t * token = (const int32_t *) row; // sequence, lowest and highest position seen
        const int32_t pos = a.cell_pos[cell];
        const uint32_t seqs = a.cell_seqs[token[0] / 32 * a.cell_seqs_row + cell];
        const bool seen = (seqs >> token[0] % 32 & 1u) && pos >= token[1] && pos <= token[2];
        return seen ? 0.0f : -INFINITY;
    }
    return a.mask->type == GGML_TYPE_F16 ? ggml_fp16_to_fp32(((const ggml_fp16_t *) row)[cell]) : ((const float *) row)[cell];
}

// The block's cells as w's GEMM operand: X̂ itself (an f32 operand), or its rows converted to
// w's vec_dot_type, this thread's cells only
const void * gemm_operand(const attn_plan & a, const ggml_tensor * w, const float * src, int64_t width, int64_t cells,
        char * converted, int ith, int nth) {
    const ggml_type type = operand_type(w);
    if (type == GGML_TYPE_F32) {
        return src;
    }
    for (int64_t c = ith; c < cells; c += nth) {
        ggml_get_type_traits_cpu(type)->from_float(src + c * a.p.width, converted + c * ggml_row_size(type, width), width);
    }
    return converted;
}

// c[j·ldc + i] = (row i of a) · (row j of b), k elements each, for m rows of a (of a_type) and n
// rows of b (of a_type's vec_dot_type), by all threads together: ggml's tiled sgemm where it
// takes the types (as mul_mat does), else a_type's vec_dot with a's rows split between the threads
void gemm(const ggml_compute_params * params, int64_t m, int64_t n, int64_t k, ggml_type a_type, const void * a, size_t a_row,
        const void * b, size_t b_row, float * c, int64_t ldc) {
    const ggml_type b_type = ggml_get_type_traits_cpu(a_type)->vec_dot_type;
    bool done = false;
#if GGML_USE_LLAMAFILE
    done = llamafile_sgemm(params, m, n, k / ggml_blck_size(a_type), a, a_row / ggml_type_size(a_type),
            b, b_row / ggml_type_size(b_type), c, ldc, a_type, b_type, GGML_TYPE_F32);
#endif
    const auto vec_dot = ggml_get_type_traits_cpu(a_type)->vec_dot;
    for (int64_t i = params->ith; i < m && !done; i += params->nth) {
        for (int64_t j = 0; j < n; ++j) {
            vec_dot((int) k, c + j * ldc + i, 0, (const char *) a + i * a_row, 0, (const char *) b + j * b_row, 0, 1);
        }
    }
    // every thread's rows are done before anyone reads them (the quantized sgemm kernels
    // split the work statically and return without a barrier)
    ggml_barrier(params->threadpool);
}

// rows[c] = w * operand[c] for the block's cells
void project_block(const ggml_compute_params * params, const attn_plan & a, char * shared, const ggml_tensor * w,
        const void * operand, int64_t width, int64_t operand_stride, int64_t cells, float * rows) {
    const ggml_type type = operand_type(w);
    const size_t operand_row = type == GGML_TYPE_F32 ? sizeof(float) * operand_stride : ggml_row_size(type, width);
    if (!dequantized_in_panels(w)) {
        gemm(params, w->ne[1], cells, width, w->type, w->data, w->nb[1], operand, operand_row, rows, w->ne[1]);
        return;
    }
    float * panel = (float *) (shared + a.w_panel);
    const auto to_float = ggml_get_type_traits(w->type)->to_float;
    for (int64_t row0 = 0; row0 < w->ne[1]; row0 += panel_rows_for(width)) {
        const int64_t n_rows = std::min(panel_rows_for(width), w->ne[1] - row0);
        for (int64_t r = params->ith; r < n_rows; r += params->nth) {
            to_float((const char *) w->data + (row0 + r) * w->nb[1], panel + r * width, width);
        }
        ggml_barrier(params->threadpool);
        gemm(params, n_rows, cells, width, GGML_TYPE_F32, panel, sizeof(float) * width, operand, operand_row, rows + row0, w->ne[1]);
    }
}

// RoPE's cos/sin for one position, as ggml's rope computes them (YaRN included)
void rope_cache(const ggml_xq_attn_rope & rope, const float * freq_factors, int32_t pos, float * cache) {
    float corr_dims[2];
    ggml_rope_yarn_corr_dims(rope.n_rot, rope.n_ctx_orig, rope.freq_base, rope.beta_fast, rope.beta_slow, corr_dims);
    const float theta_scale = powf(rope.freq_base, -2.0f / rope.n_rot);
    float theta_extrap = (float) pos;
    for (int i0 = 0; i0 < rope.n_rot; i0 += 2) {
        const float theta_base = theta_extrap / (freq_factors ? freq_factors[i0 / 2] : 1.0f);
        float theta = rope.freq_scale * theta_base;
        float mscale = rope.attn_factor;
        if (rope.ext_factor != 0.0f) {
            const float y = (i0 / 2 - corr_dims[0]) / std::max(0.001f, corr_dims[1] - corr_dims[0]);
            const float ramp_mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * rope.ext_factor;
            theta = theta * (1.0f - ramp_mix) + theta_base * ramp_mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / rope.freq_scale);
        }
        cache[i0] = cosf(theta) * mscale;
        cache[i0 + 1] = sinf(theta) * mscale;
        theta_extrap *= theta_scale;
    }
}

void rope_head(const ggml_xq_attn_rope & rope, const float * cache, float * x) {
    for (int i0 = 0; i0 < rope.n_rot; i0 += 2) {
        // NORMAL rotates neighbours, NEOX the two halves of the rotated dims
        const int a = rope.mode == GGML_ROPE_TYPE_NEOX ? i0 / 2 : i0;
        const int b = rope.mode == GGML_ROPE_TYPE_NEOX ? i0 / 2 + rope.n_rot / 2 : i0 + 1;
        const float x0 = x[a];
        const float x1 = x[b];
        x[a] = x0 * cache[i0] - x1 * cache[i0 + 1];
        x[b] = x0 * cache[i0 + 1] + x1 * cache[i0];
    }
}

// XQuant-CL: the cell's row (its stored delta) plus the earlier layers' rows, then the layer's
// RMS norm, as the GEMM path's chained load and build_norm compute it. The rows are summed
// before the rotation and rotated once: one inverse Hadamard per cell, not one per layer.
void cross_layer_row(const attn_plan & a, int64_t cell, float * row, float * layer_rows) {
    float * rotated = layer_rows;
    float * plain = layer_rows + a.p.width;
    std::fill(rotated, rotated + a.p.width, 0.0f);
    std::fill(plain, plain + a.p.width, 0.0f);
    ggml_xq_dequantize_row_add((const uint8_t *) a.storage->data + cell * a.row_bytes, rotated, plain, a.p.width, a.p.bits);
    for (const ggml_tensor * layer = a.layers; layer != nullptr; layer = layer->src[0]) {
        const int bits = ggml_get_op_params_i32(layer, 0);
        ggml_xq_dequantize_row_add((const uint8_t *) layer->src[1]->data + cell * ggml_xq_row_bytes(a.p.width, bits), rotated, plain, a.p.width, bits);
    }
    ggml_xq_unrotate_row(rotated, a.p.width);
    for (int64_t i = 0; i < a.p.width; ++i) {
        row[i] = rotated[i] + plain[i];
    }
    double squares = 0.0;
    for (int64_t i = 0; i < a.p.width; ++i) {
        squares += (double) (row[i] * row[i]);
    }
    const float scale = 1.0f / sqrtf((float) (squares / a.p.width) + a.p.x_norm_eps);
    ggml_vec_scale_f32((int) a.p.width, row, scale);
    ggml_vec_mul_f32((int) a.p.width, row, row, (const float *) a.x_norm->data);
}

// bias, k-norm per head and RoPE at the cell's position, on one rebuilt K row
void finish_k(const attn_plan & a, float * k_cell, int32_t pos, float * cache) {
    if (a.k_bias) {
        ggml_vec_acc_f32((int) a.d_kv, k_cell, (const float *) a.k_bias->data);
    }
    rope_cache(a.p.rope, a.rope_factors ? (const float *) a.rope_factors->data : nullptr, pos, cache);
    for (int64_t h = 0; h < a.d_kv; h += a.head_dim) {
        float * head = k_cell + h;
        if (a.k_norm) {
            double sum = 0.0;
            for (int64_t i = 0; i < a.head_dim; ++i) {
                sum += (double) (head[i] * head[i]);
            }
            const float scale = 1.0f / sqrtf((float) (sum / a.head_dim) + a.p.k_norm_eps);
            for (int64_t i = 0; i < a.head_dim; ++i) {
                head[i] *= scale * ((const float *) a.k_norm->data)[i];
            }
        }
        rope_head(a.p.rope, cache, head);
    }
}

// Fold one block into the online softmax of pair p (token t, head h), first step: the scores
// against the rebuilt K, the running max and sum, and the block's weights exp(score - max)
// (0 where masked, and past the cells up to the GEMM's padding). Returns the factor the pair's
// accumulator must first be scaled by (0 on the first block it sees), or -1 when the block adds
// nothing to it.
float fold_scores(const attn_plan & a, char * shared, const float * mask_row, float * weights, int64_t t, int64_t h, int64_t cells) {
    const int64_t kv_head = h / a.n_gqa;
    const float * k = (const float *) (shared + a.k);
    const float * q = (const float *) ((const char *) a.q->data + h * a.q->nb[1] + t * a.q->nb[2]);
    float block_max = -INFINITY;
    for (int64_t c = 0; c < cells; ++c) {
        float s = -INFINITY;
        if (mask_row[c] != -INFINITY) {
            ggml_vec_dot_f32((int) a.head_dim, &s, 0, q, 0, k + c * a.d_kv + kv_head * a.head_dim, 0, 1);
            s = s * a.p.kq_scale + mask_row[c];
        }
        weights[c] = s;
        block_max = std::max(block_max, s);
    }
    // the GEMM's depth is padded with zero weights
    std::fill(weights + cells, weights + padded_cells(cells), 0.0f);
    if (block_max == -INFINITY) {
        std::fill(weights, weights + cells, 0.0f);
        return -1.0f;
    }
    float * st = (float *) (shared + a.state) + (t * a.n_head + h) * a.state_width;
    float correction = 1.0f;
    if (block_max > st[0]) {
        correction = expf(st[0] - block_max);
        st[1] *= correction;
        st[0] = block_max;
    }
    // the weights in one vectorized pass
    st[1] += (float) ggml_vec_soft_max_f32((int) cells, weights, weights, st[0]);
    return correction;
}

// Second step, by all threads after the first: the weighted V (or V source) of the pairs as
// GEMMs over the block's cells (P·V, with V transposed so that the cells are the depth, as
// fold_block_tiled does), then each thread rescales its slice of the pairs' accumulators and
// adds its slice of the result. V absorbed: one V source (X̂'s slice) for every pair, fold_pairs
// at a time; plain: per kv head, its heads of each token.
void fold_values(const ggml_compute_params * params, const attn_plan & a, char * shared, int64_t cells) {
    const int ith = params->ith;
    const int nth = params->nth;
    const int64_t n_pairs = a.n_tokens * a.n_head;
    const int64_t cells_padded = padded_cells(cells);
    const float * weights = (const float *) (shared + a.fold_weights); // [n_pairs][block_cells]
    const float * corr = (const float *) (shared + a.fold_corr);
    const float * x_hat = (const float *) (shared + a.x_hat);
    const float * v = (const float *) (shared + a.v);
    float * v_t = (float *) (shared + a.fold_v_t); // [out_width][cells_padded]
    float * out = (float *) (shared + a.fold_out); // [run][out_width]
    const int64_t slice = (a.out_width + nth - 1) / nth;
    const int64_t e0 = std::min(a.out_width, ith * slice);
    const int n = (int) (std::min(a.out_width, e0 + slice) - e0);
    const int64_t n_sources = a.wv ? a.d_kv / a.head_dim : 1;
    for (int64_t g = 0; g < n_sources; ++g) {
        for (int64_t i = ith; i < a.out_width; i += nth) {
            float * row = v_t + i * cells_padded;
            for (int64_t c = 0; c < cells; ++c) {
                row[c] = a.wv ? v[c * a.d_kv + g * a.head_dim + i] : x_hat[c * a.p.width + a.v_offset + i];
            }
            std::fill(row + cells, row + cells_padded, 0.0f);
        }
        ggml_barrier(params->threadpool);
        const int64_t run = a.wv ? a.n_gqa : fold_pairs;
        const int64_t stride = a.wv ? a.n_head : fold_pairs;
        for (int64_t first = a.wv ? g * a.n_gqa : 0; first < n_pairs; first += stride) {
            const int64_t len = std::min(run, n_pairs - first);
            gemm(params, a.out_width, len, cells_padded, GGML_TYPE_F32, v_t, sizeof(float) * cells_padded,
                weights + first * a.block_cells, sizeof(float) * a.block_cells, out, a.out_width);
            for (int64_t j = 0; j < len && n > 0; ++j) {
                const int64_t p = first + j;
                if (corr[p] < 0.0f) {
                    continue;
                }
                float * acc = (float *) (shared + a.state) + p * a.state_width + 2 + e0;
                if (corr[p] != 1.0f) {
                    ggml_vec_scale_f32(n, acc, corr[p]);
                }
                ggml_vec_acc_f32(n, acc, out + j * a.out_width + e0);
            }
            // the next run rewrites out, the next source v_t
            ggml_barrier(params->threadpool);
        }
    }
}

// Fold one block into every (token, head)'s softmax with the queries tiled (prefill ubatches,
// V rebuilt): per head, the scores of all tokens as one GEMM (Q·Kᵀ), the softmax update per
// token, then the weighted V as a second GEMM (P·V) added to the rescaled accumulators.
void fold_block_tiled(const ggml_compute_params * params, const attn_plan & a, char * shared, int64_t cell0, int64_t cells) {
    const int ith = params->ith;
    const int nth = params->nth;
    const int64_t cells_padded = padded_cells(cells);
    const float * k = (const float *) (shared + a.k);
    const float * v = (const float *) (shared + a.v);
    float * scores = (float *) (shared + a.tile_scores); // [n_tokens][cells_padded], then the weights
    float * v_t = (float *) (shared + a.tile_v);         // a kv head's V over the cells, per channel
    float * out = (float *) (shared + a.tile_out);       // [n_tokens][head_dim]
    float * corr = (float *) (shared + a.tile_corr);     // each token's rescaling of its state
    // [n_tokens][cells_padded], the same for every head; each thread fills and reads its own
    // tokens' rows (the token loops below split them alike), so no barrier
    float * mask = (float *) (shared + a.tile_mask);
    for (int64_t t = ith; t < a.n_tokens; t += nth) {
        for (int64_t c = 0; c < cells; ++c) {
            mask[t * cells_padded + c] = mask_at(a, t, cell0 + c);
        }
    }
    for (int64_t h = 0; h < a.n_head; ++h) {
        const int64_t kv_head = h / a.n_gqa;
        if (h % a.n_gqa == 0) {
            for (int64_t i = ith; i < a.head_dim; i += nth) {
                float * row = v_t + i * cells_padded;
                for (int64_t c = 0; c < cells; ++c) {
                    row[c] = v[c * a.d_kv + kv_head * a.head_dim + i];
                }
                std::fill(row + cells, row + cells_padded, 0.0f);
            }
        }
        const char * q = (const char *) a.q->data + h * a.q->nb[1];
        gemm(params, cells, a.n_tokens, a.head_dim, GGML_TYPE_F32, k + kv_head * a.head_dim, sizeof(float) * a.d_kv,
            q, a.q->nb[2], scores, cells_padded);
        for (int64_t t = ith; t < a.n_tokens; t += nth) {
            float * row = scores + t * cells_padded;
            float block_max = -INFINITY;
            for (int64_t c = 0; c < cells; ++c) {
                const float m = mask[t * cells_padded + c];
                row[c] = m == -INFINITY ? -INFINITY : row[c] * a.p.kq_scale + m;
                block_max = std::max(block_max, row[c]);
            }
            float * st = (float *) (shared + a.state) + (t * a.n_head + h) * a.state_width;
            if (block_max == -INFINITY) {
                corr[t] = 1.0f;
                std::fill(row, row + cells_padded, 0.0f);
                continue;
            }
            const float new_max = std::max(st[0], block_max);
            corr[t] = expf(st[0] - new_max);
            st[1] = st[1] * corr[t] + (float) ggml_vec_soft_max_f32((int) cells, row, row, new_max);
            st[0] = new_max;
            std::fill(row + cells, row + cells_padded, 0.0f);
        }
        ggml_barrier(params->threadpool);
        gemm(params, a.head_dim, a.n_tokens, cells_padded, GGML_TYPE_F32, v_t, sizeof(float) * cells_padded,
            scores, sizeof(float) * cells_padded, out, a.head_dim);
        for (int64_t t = ith; t < a.n_tokens; t += nth) {
            float * acc = (float *) (shared + a.state) + (t * a.n_head + h) * a.state_width + 2;
            ggml_vec_scale_f32((int) a.head_dim, acc, corr[t]);
            ggml_vec_acc_f32((int) a.head_dim, acc, out + t * a.head_dim);
        }
    }
}

} // namespace

size_t ggml_xq_attn_work_size(const ggml_tensor * op, int n_threads) {
    const attn_plan a = plan_of(op);
    return a.shared + a.per_thread * n_threads + scratch_align;
}

// The threads go through the blocks together: each block's rows are dequantized and its K
// (and V) rebuilt by all of them, then each thread folds the block into the softmax states
// of its own (token, head) pairs, so no states need merging at the end.
void ggml_compute_forward_xq_attn(const ggml_compute_params * params, ggml_tensor * dst) {
    const attn_plan a = plan_of(dst);
    const int ith = params->ith;
    const int nth = params->nth;
    char * shared = (char *) align_up((size_t) params->wdata);
    char * own = shared + a.shared + a.per_thread * ith;
    GGML_ASSERT(shared + a.shared + a.per_thread * nth <= (char *) params->wdata + params->wsize);
    float * x_hat = (float *) (shared + a.x_hat);
    float * mask_row = (float *) (own + a.mask_row);
    const int64_t block_cells = a.block_cells;
    const int64_t n_pairs = a.n_tokens * a.n_head;
    for (int64_t p = ith; p < n_pairs; p += nth) {
        float * st = (float *) (shared + a.state) + p * a.state_width;
        st[0] = -INFINITY;
        std::fill(st + 1, st + a.state_width, 0.0f);
    }

    for (int64_t cell0 = 0; cell0 < a.n_kv; cell0 += block_cells) {
        const int64_t cells = std::min(block_cells, a.n_kv - cell0);
        // cells no token sees (other sequences, outside a window, empty) cost nothing;
        // every thread reads the same mask, so all skip together
        bool visible = false;
        for (int64_t t = 0; t < a.n_tokens && !visible; ++t) {
            for (int64_t c = 0; c < cells && !visible; ++c) {
                visible = mask_at(a, t, cell0 + c) != -INFINITY;
            }
        }
        if (!visible) {
            continue;
        }
        for (int64_t c = ith; c < cells; c += nth) {
            if (a.lifted) {
                ggml_xq_sum_layers(a.storage, cell0 + c, x_hat + c * a.p.width, (float *) (own + a.layer_rows));
                continue;
            }
            if (a.x_norm) {
                cross_layer_row(a, cell0 + c, x_hat + c * a.p.width, (float *) (own + a.layer_rows));
                continue;
            }
            ggml_xq_dequantize_row((const uint8_t *) a.storage->data + (cell0 + c) * a.row_bytes, x_hat + c * a.p.width, a.p.width, a.p.bits);
        }
        for (int64_t t = 0; a.exact && t < a.exact->ne[1]; ++t) {
            const int64_t c = ggml_xq_index(a.idxs, t) - cell0;
            if (c >= 0 && c < cells && c % nth == ith) {
                std::memcpy(x_hat + c * a.p.width, (const char *) a.exact->data + t * a.exact->nb[1], sizeof(float) * a.p.width);
            }
        }
        const void * k_operand = gemm_operand(a, a.wk, x_hat, a.k_width, cells, shared + a.k_dot, ith, nth);
        const void * v_operand = a.wv ? gemm_operand(a, a.wv, x_hat + a.v_offset, a.p.v_width, cells, shared + a.v_dot, ith, nth) : nullptr;
        ggml_barrier(params->threadpool);

        project_block(params, a, shared, a.wk, k_operand, a.k_width, a.p.width, cells, (float *) (shared + a.k));
        if (a.wv) {
            project_block(params, a, shared, a.wv, v_operand, a.p.v_width, a.p.width, cells, (float *) (shared + a.v));
        }
        for (int64_t c = ith; c < cells; c += nth) {
            finish_k(a, (float *) (shared + a.k) + c * a.d_kv, a.cell_pos[cell0 + c], (float *) (own + a.rope));
        }
        ggml_barrier(params->threadpool);

        int64_t mask_token = -1;
        if (a.tiled) {
            fold_block_tiled(params, a, shared, cell0, cells);
        }
        for (int64_t p = ith; p < n_pairs && !a.tiled; p += nth) {
            const int64_t t = p / a.n_head;
            if (t != mask_token) {
                for (int64_t c = 0; c < cells; ++c) {
                    mask_row[c] = mask_at(a, t, cell0 + c);
                }
                mask_token = t;
            }
            float * weights = (float *) (shared + a.fold_weights) + p * block_cells;
            ((float *) (shared + a.fold_corr))[p] = fold_scores(a, shared, mask_row, weights, t, p % a.n_head, cells);
        }
        if (!a.tiled) {
            ggml_barrier(params->threadpool);
            fold_values(params, a, shared, cells);
        }
        // the next block overwrites X̂, K and V
        ggml_barrier(params->threadpool);
    }

    for (int64_t p = ith; p < n_pairs; p += nth) {
        const float * st = (const float *) (shared + a.state) + p * a.state_width;
        float * out = (float *) ((char *) dst->data + (p / a.n_head) * dst->nb[1] + (p % a.n_head) * dst->nb[2]);
        // no cell in view leaves a zero output, as softmax over nothing
        const float scale = st[1] > 0.0f ? 1.0f / st[1] : 0.0f;
        for (int64_t i = 0; i < a.out_width; ++i) {
            out[i] = st[2 + i] * scale;
        }
    }
}
