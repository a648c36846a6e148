// CPU kernel of GGML_OP_XQ_ATTN (ggml-xquant.h): attention straight from the
// X-cache, flash-decoding style. Each thread takes blocks of cells, rebuilds K
// (and V unless it is absorbed) for the block only, and keeps an online softmax
// per query token and head; the threads' partial results are merged by their
// log-sum-exp at the end. Scratch is a block of cells plus one accumulator per
// token and head, whatever the context length.
#include "xquant-ops.h"
#include "ggml-cpu-impl.h"
#include "ggml-cpu.h"
#include "ggml-xquant.h"
#include "vec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace {

constexpr int64_t block_cells = 32;
constexpr size_t scratch_align = 64;

size_t align_up(size_t n) {
    return (n + scratch_align - 1) / scratch_align * scratch_align;
}

// Shapes and the byte offsets of one thread's scratch.
struct attn_plan {
    ggml_xq_attn_params p;
    const ggml_tensor * storage;
    const ggml_tensor * q;
    const ggml_tensor * wk;
    const ggml_tensor * cell_pos;
    const ggml_tensor * mask;
    const ggml_tensor * exact;
    const ggml_tensor * idxs;
    const ggml_tensor * wv = nullptr;
    const ggml_tensor * k_bias = nullptr;
    const ggml_tensor * k_norm = nullptr;
    const ggml_tensor * rope_factors = nullptr;

    int64_t n_kv, head_dim, n_head, n_tokens, d_kv, n_gqa, k_width, v_offset, out_width, state_width;
    size_t row_bytes, k_dot_row, v_dot_row;
    ggml_type k_dot_type, v_dot_type;

    size_t x_hat, k_dot, v_dot, k, v, scores, rope, state, per_thread;
};

attn_plan plan_of(const ggml_tensor * dst) {
    attn_plan a;
    a.p = ggml_xq_attn_get_params(dst);
    a.storage = dst->src[0];
    a.q = dst->src[1];
    a.wk = dst->src[2];
    a.cell_pos = dst->src[3];
    a.mask = dst->src[4];
    a.exact = dst->src[5];
    a.idxs = dst->src[6];
    int slot = GGML_XQ_ATTN_FIRST_OPTIONAL;
    if (a.p.flags & GGML_XQ_ATTN_HAS_WV)           a.wv = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_K_BIAS)       a.k_bias = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_K_NORM)       a.k_norm = dst->src[slot++];
    if (a.p.flags & GGML_XQ_ATTN_HAS_ROPE_FACTORS) a.rope_factors = dst->src[slot++];

    a.n_kv = a.cell_pos->ne[0];
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
    a.k_dot_type = ggml_get_type_traits_cpu(a.wk->type)->vec_dot_type;
    a.k_dot_row = ggml_row_size(a.k_dot_type, a.k_width);
    a.v_dot_type = a.wv ? ggml_get_type_traits_cpu(a.wv->type)->vec_dot_type : GGML_TYPE_F32;
    a.v_dot_row = a.wv ? ggml_row_size(a.v_dot_type, a.p.v_width) : 0;

    size_t at = 0;
    auto take = [&](size_t bytes) { const size_t offset = at; at += align_up(bytes); return offset; };
    a.x_hat  = take(sizeof(float) * block_cells * a.p.width);
    a.k_dot  = take(a.k_dot_type == GGML_TYPE_F32 ? 0 : block_cells * a.k_dot_row);
    a.v_dot  = take(a.wv && a.v_dot_type != GGML_TYPE_F32 ? block_cells * a.v_dot_row : 0);
    a.k      = take(sizeof(float) * block_cells * a.d_kv);
    a.v      = take(a.wv ? sizeof(float) * block_cells * a.d_kv : 0);
    a.scores = take(sizeof(float) * 2 * block_cells);
    a.rope   = take(sizeof(float) * a.head_dim);
    a.state  = take(sizeof(float) * a.n_tokens * a.n_head * a.state_width);
    a.per_thread = at;
    return a;
}

float mask_at(const ggml_tensor * mask, int64_t t, int64_t cell) {
    const char * row = (const char *) mask->data + t * mask->nb[1];
    return mask->type == GGML_TYPE_F16 ? ggml_fp16_to_fp32(((const ggml_fp16_t *) row)[cell]) : ((const float *) row)[cell];
}

int64_t index_at(const ggml_tensor * idxs, int64_t i) {
    return idxs->type == GGML_TYPE_I64 ? ((const int64_t *) idxs->data)[i] : ((const int32_t *) idxs->data)[i];
}

// rows[c] = w * src[c] for the block's cells: the weight type's vec_dot against
// each cell's source converted to its vec_dot_type, one weight row at a time
// (the row stays in L1 over the block)
void project_block(const ggml_tensor * w, const float * src, int64_t src_stride, int64_t width, int64_t cells,
        char * converted, size_t converted_row, float * rows) {
    const auto * traits = ggml_get_type_traits_cpu(w->type);
    const bool convert = traits->vec_dot_type != GGML_TYPE_F32;
    for (int64_t c = 0; c < cells && convert; ++c) {
        ggml_get_type_traits_cpu(traits->vec_dot_type)->from_float(src + c * src_stride, converted + c * converted_row, width);
    }
    const int64_t n_out = w->ne[1];
    for (int64_t o = 0; o < n_out; ++o) {
        const char * w_row = (const char *) w->data + o * w->nb[1];
        for (int64_t c = 0; c < cells; ++c) {
            const void * x = convert ? (const void *) (converted + c * converted_row) : (const void *) (src + c * src_stride);
            traits->vec_dot((int) width, rows + c * n_out + o, 0, w_row, 0, x, 0, 1);
        }
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

// K of the block's cells: projected, bias, k-norm per head, RoPE at each cell's position
void rebuild_k(const attn_plan & a, const float * x_hat, int64_t cell0, int64_t cells, char * scratch) {
    float * k = (float *) (scratch + a.k);
    project_block(a.wk, x_hat, a.p.width, a.k_width, cells, scratch + a.k_dot, a.k_dot_row, k);
    float * cache = (float *) (scratch + a.rope);
    const float * freq_factors = a.rope_factors ? (const float *) a.rope_factors->data : nullptr;
    for (int64_t c = 0; c < cells; ++c) {
        float * k_cell = k + c * a.d_kv;
        if (a.k_bias) {
            ggml_vec_acc_f32((int) a.d_kv, k_cell, (const float *) a.k_bias->data);
        }
        rope_cache(a.p.rope, freq_factors, ((const int32_t *) a.cell_pos->data)[cell0 + c], cache);
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
}

// one thread's share: every block of cells it owns, folded into its online softmax states
void attend_blocks(const attn_plan & a, int ith, int nth, char * scratch) {
    float * x_hat = (float *) (scratch + a.x_hat);
    float * k = (float *) (scratch + a.k);
    float * v = (float *) (scratch + a.v);
    float * mask_row = (float *) (scratch + a.scores);
    float * scores = mask_row + block_cells;
    float * state = (float *) (scratch + a.state);
    for (int64_t p = 0; p < a.n_tokens * a.n_head; ++p) {
        float * st = state + p * a.state_width;
        st[0] = -INFINITY;
        std::fill(st + 1, st + a.state_width, 0.0f);
    }

    for (int64_t cell0 = ith * block_cells; cell0 < a.n_kv; cell0 += nth * block_cells) {
        const int64_t cells = std::min(block_cells, a.n_kv - cell0);
        // cells no token sees (other sequences, outside a window, empty) cost nothing
        bool visible = false;
        for (int64_t t = 0; t < a.n_tokens && !visible; ++t) {
            for (int64_t c = 0; c < cells && !visible; ++c) {
                visible = mask_at(a.mask, t, cell0 + c) != -INFINITY;
            }
        }
        if (!visible) {
            continue;
        }
        for (int64_t c = 0; c < cells; ++c) {
            ggml_xq_dequantize_row((const uint8_t *) a.storage->data + (cell0 + c) * a.row_bytes, x_hat + c * a.p.width, a.p.width, a.p.bits);
        }
        for (int64_t t = 0; a.exact && t < a.exact->ne[1]; ++t) {
            const int64_t cell = index_at(a.idxs, t);
            if (cell >= cell0 && cell < cell0 + cells) {
                std::memcpy(x_hat + (cell - cell0) * a.p.width, (const char *) a.exact->data + t * a.exact->nb[1], sizeof(float) * a.p.width);
            }
        }
        rebuild_k(a, x_hat, cell0, cells, scratch);
        if (a.wv) {
            project_block(a.wv, x_hat + a.v_offset, a.p.width, a.p.v_width, cells, scratch + a.v_dot, a.v_dot_row, v);
        }

        for (int64_t t = 0; t < a.n_tokens; ++t) {
            bool token_sees = false;
            for (int64_t c = 0; c < cells; ++c) {
                mask_row[c] = mask_at(a.mask, t, cell0 + c);
                token_sees |= mask_row[c] != -INFINITY;
            }
            if (!token_sees) {
                continue;
            }
            for (int64_t h = 0; h < a.n_head; ++h) {
                const int64_t kv_head = h / a.n_gqa;
                const float * q = (const float *) ((const char *) a.q->data + h * a.q->nb[1] + t * a.q->nb[2]);
                float block_max = -INFINITY;
                for (int64_t c = 0; c < cells; ++c) {
                    float s = -INFINITY;
                    if (mask_row[c] != -INFINITY) {
                        ggml_vec_dot_f32((int) a.head_dim, &s, 0, q, 0, k + c * a.d_kv + kv_head * a.head_dim, 0, 1);
                        s = s * a.p.kq_scale + mask_row[c];
                    }
                    scores[c] = s;
                    block_max = std::max(block_max, s);
                }
                float * st = state + (t * a.n_head + h) * a.state_width;
                float * acc = st + 2;
                if (block_max > st[0]) {
                    const float correction = expf(st[0] - block_max);
                    st[1] *= correction;
                    ggml_vec_scale_f32((int) a.out_width, acc, correction);
                    st[0] = block_max;
                }
                for (int64_t c = 0; c < cells; ++c) {
                    if (scores[c] == -INFINITY) {
                        continue;
                    }
                    const float weight = expf(scores[c] - st[0]);
                    st[1] += weight;
                    const float * v_src = a.wv ? v + c * a.d_kv + kv_head * a.head_dim : x_hat + c * a.p.width + a.v_offset;
                    ggml_vec_mad_f32((int) a.out_width, acc, v_src, weight);
                }
            }
        }
    }
}

} // namespace

size_t ggml_xq_attn_work_size(const ggml_tensor * op, int n_threads) {
    return plan_of(op).per_thread * n_threads + scratch_align;
}

void ggml_compute_forward_xq_attn(const ggml_compute_params * params, ggml_tensor * dst) {
    const attn_plan a = plan_of(dst);
    char * base = (char *) align_up((size_t) params->wdata);
    GGML_ASSERT(base + a.per_thread * params->nth <= (char *) params->wdata + params->wsize);
    attend_blocks(a, params->ith, params->nth, base + a.per_thread * params->ith);
    ggml_barrier(params->threadpool);

    // merge the threads' states of each (token, head) by their log-sum-exp
    for (int64_t p = params->ith; p < a.n_tokens * a.n_head; p += params->nth) {
        const int64_t t = p / a.n_head;
        const int64_t h = p % a.n_head;
        float * out = (float *) ((char *) dst->data + t * dst->nb[1] + h * dst->nb[2]);
        std::fill(out, out + a.out_width, 0.0f);
        float max = -INFINITY;
        for (int i = 0; i < params->nth; ++i) {
            max = std::max(max, ((const float *) (base + a.per_thread * i + a.state))[p * a.state_width]);
        }
        if (max == -INFINITY) {
            continue; // no cell in view: the output is zero, as softmax over nothing
        }
        float sum = 0.0f;
        for (int i = 0; i < params->nth; ++i) {
            const float * st = (const float *) (base + a.per_thread * i + a.state) + p * a.state_width;
            const float weight = expf(st[0] - max);
            if (weight == 0.0f) {
                continue;
            }
            sum += st[1] * weight;
            ggml_vec_mad_f32((int) a.out_width, out, st + 2, weight);
        }
        ggml_vec_scale_f32((int) a.out_width, out, 1.0f / sum);
    }
}
