// Device code of GGML_OP_XQ_ATTN on CUDA (host side: xquant-attn.cu; the CPU kernel,
// which defines the op, is ggml-cpu/xquant-attn.cpp). Like xquant-kernels.cuh it
// includes nothing itself: it comes after common.cuh (ggml.h), ggml-xquant.h and
// xquant-kernels.cuh, whose dequantization it reuses, or after the emulator's CUDA
// shim (native/tests/gpu-emulate), so the test runs this very code.
//
// Flash decoding. A block takes one kv head, a chunk of tokens (its query rows are
// those tokens times the kv head's n_gqa query heads) and one split of the cells,
// and walks the split in tiles of XQ_ATTN_CELLS cells:
//  1. the K source (the row's first k_width channels) group by group: the warps
//     dequantize the tile's cells into shared memory (exact rows where given), and
//     the threads add w_k times the group to the tile's K, also in shared memory;
//  2. bias, k-norm and RoPE at each cell's position; scores against the query rows
//     (kq_scale, mask); the online softmax state of each row;
//  3. the V source (the row's last v_width channels) group by group again: absorbed,
//     the weighted group goes straight into the rows' accumulators; plain, w_v times
//     the groups is rebuilt in K's shared memory first, then weighted.
// X̂ lives in shared memory only, one group of one tile at a time, so shared memory
// does not depend on the width: 28.6 KB at most (group 128, head_dim 256). The
// accumulators are the split's partial result in global scratch, owned by one thread
// each; k_xq_attn_merge then combines the splits by their log-sum-exp. Plain FMAs,
// no tensor cores. The end of the file is host code that the emulator shares: the
// launch plan (what the kernels take is ggml_xq_attn_gpu_supported, ggml-xquant.cpp).
#pragma once

#define XQ_ATTN_CELLS        16  // cells per tile
#define XQ_ATTN_THREADS      128
#define XQ_ATTN_ROWS         32  // query rows (token, head) per block at most
#define XQ_ATTN_MAX_HEAD_DIM 256
#define XQ_ATTN_MAX_SPLITS   32

// Scalars and pointers of one XQ_ATTN node (filled by xq_attn_plan_of below).
struct xq_attn_args {
    const uint8_t * storage;
    const float   * q;
    const void    * wk;
    const void    * wv;           // null: V absorbed
    const float   * k_bias;
    const float   * k_norm;
    const float   * rope_factors;
    const int32_t * cell_pos;
    const char    * mask;
    const char    * exact;        // null: no exact rows
    const char    * idxs;
    float         * partial;      // [n_splits][n_tokens][n_head][out_width]
    float         * max_sum;      // [n_splits][n_tokens][n_head][2]: running max and sum

    int     bits, width, k_width, v_offset, v_width, out_width;
    int     head_dim, n_head, n_gqa, n_kv, n_tokens, n_exact;
    int     tokens_per_block, tiles_per_split;
    int64_t row_bytes, ldwk, ldwv, nb_q1, nb_q2, nb_mask1, nb_exact1;
    bool    mask_f16, idx64;
    float   kq_scale, k_norm_eps;
    // RoPE, with what does not depend on the position worked out by the host
    int     n_rot;
    bool    rope_neox;
    float   freq_scale, ext_factor, mscale, theta_scale, corr_dims[2];
};

static __device__ __forceinline__ float xq_attn_mask(const xq_attn_args & a, const int t, const int cell) {
    const char * row = a.mask + t * a.nb_mask1;
    return a.mask_f16 ? __half2float(((const half *) row)[cell]) : ((const float *) row)[cell];
}

// partial result of query row r (token t0 + r / n_gqa, head hk * n_gqa + r % n_gqa) in a split
static __device__ __forceinline__ int64_t xq_attn_pair(const xq_attn_args & a, const int split, const int t0, const int hk, const int r) {
    return ((int64_t) split * a.n_tokens + t0 + r / a.n_gqa) * a.n_head + hk * a.n_gqa + r % a.n_gqa;
}

// Group g of the tile's cells into xs[channel][cell], one warp per cell (the Hadamard
// shuffles need the whole warp); the ubatch's own cells take their exact rows.
template <int G>
static __device__ void xq_attn_load_group(const xq_attn_args & a, const int cell0, const int cells, const int g,
        const int * exact_of, float (*xs)[XQ_ATTN_CELLS + 1], const int lane, const int warp) {
    constexpr int VPL = G / XQ_WARP;
    for (int c = warp; c < XQ_ATTN_CELLS; c += XQ_ATTN_THREADS / XQ_WARP) {
        float v[VPL];
        if (c >= cells) {
#pragma unroll
            for (int k = 0; k < VPL; ++k) {
                v[k] = 0.0f;
            }
        } else if (exact_of[c] >= 0) {
            const float * row = (const float *) (a.exact + exact_of[c] * a.nb_exact1) + g * G;
#pragma unroll
            for (int k = 0; k < VPL; ++k) {
                v[k] = row[lane + XQ_WARP * k];
            }
        } else {
            xq_dequantize_group<G>(a.storage + (int64_t) (cell0 + c) * a.row_bytes, g, a.bits, lane, v);
        }
#pragma unroll
        for (int k = 0; k < VPL; ++k) {
            xs[lane + XQ_WARP * k][c] = v[k];
        }
    }
}

// out[d][c] (+)= sum over channels lo <= i < hi of w[row0 + d][col0 + i] * xs[i][c], for
// d < head_dim: one output row per thread and cell at a time
template <typename TW>
static __device__ void xq_attn_project(const xq_attn_args & a, const TW * w, const int64_t ldw, const int64_t row0, const int64_t col0,
        const int lo, const int hi, const bool first, const float (*xs)[XQ_ATTN_CELLS + 1], float (*out)[XQ_ATTN_CELLS + 1], const int tid) {
    const int c = tid % XQ_ATTN_CELLS;
    for (int d = tid / XQ_ATTN_CELLS; d < a.head_dim; d += XQ_ATTN_THREADS / XQ_ATTN_CELLS) {
        const TW * w_row = w + (row0 + d) * ldw;
        float sum = 0.0f;
#pragma unroll 8
        for (int i = lo; i < hi; ++i) {
            sum += xq_to_float(w_row[col0 + i]) * xs[i][c];
        }
        out[d][c] = first ? sum : out[d][c] + sum;
    }
}

// K of one cell of kv head hk: bias, RMS norm over the head, RoPE at the cell's position,
// as the CPU's finish_k/rope_cache/rope_head
static __device__ void xq_attn_finish_k(const xq_attn_args & a, const int hk, const int pos, float (*k)[XQ_ATTN_CELLS + 1], const int c) {
    const int D = a.head_dim;
    if (a.k_bias) {
        for (int d = 0; d < D; ++d) {
            k[d][c] += a.k_bias[hk * D + d];
        }
    }
    if (a.k_norm) {
        float sum = 0.0f;
        for (int d = 0; d < D; ++d) {
            sum += k[d][c] * k[d][c];
        }
        const float scale = 1.0f / sqrtf(sum / D + a.k_norm_eps);
        for (int d = 0; d < D; ++d) {
            k[d][c] *= scale * a.k_norm[d];
        }
    }
    // theta advances by a product per pair, as on the CPU, so both round alike
    float theta_extrap = (float) pos;
    for (int i0 = 0; i0 < a.n_rot; i0 += 2) {
        const float theta_base = theta_extrap / (a.rope_factors ? a.rope_factors[i0 / 2] : 1.0f);
        float theta = a.freq_scale * theta_base;
        if (a.ext_factor != 0.0f) {
            const float y = (i0 / 2 - a.corr_dims[0]) / fmaxf(0.001f, a.corr_dims[1] - a.corr_dims[0]);
            const float ramp_mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * a.ext_factor;
            theta = theta * (1.0f - ramp_mix) + theta_base * ramp_mix;
        }
        // in double: ggml-cuda builds with -use_fast_math, whose cosf/sinf lose accuracy
        // as the angle grows, and positions reach 1e5 radians
        const float cos_theta = (float) cos((double) theta) * a.mscale;
        const float sin_theta = (float) sin((double) theta) * a.mscale;
        // NORMAL rotates neighbours, NEOX the two halves of the rotated dims
        const int i = a.rope_neox ? i0 / 2 : i0;
        const int j = a.rope_neox ? i0 / 2 + a.n_rot / 2 : i0 + 1;
        const float x0 = k[i][c];
        const float x1 = k[j][c];
        k[i][c] = x0 * cos_theta - x1 * sin_theta;
        k[j][c] = x0 * sin_theta + x1 * cos_theta;
        theta_extrap *= a.theta_scale;
    }
}

// acc[r][e0 + e] = acc[r][e0 + e] * corr[r] + sum over cells of p[r][c] * src[lo + e][c],
// for the block's rows and e < hi - lo; each (row, channel) is one thread's
static __device__ void xq_attn_accumulate(const xq_attn_args & a, const int split, const int t0, const int hk, const int n_rows,
        const float (*p)[XQ_ATTN_CELLS], const float * corr, const float (*src)[XQ_ATTN_CELLS + 1], const int lo, const int hi,
        const int e0, const int tid) {
    const int n = hi - lo;
    for (int idx = tid; idx < n_rows * n; idx += XQ_ATTN_THREADS) {
        const int r = idx / n;
        const int e = idx % n;
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < XQ_ATTN_CELLS; ++c) {
            sum += p[r][c] * src[lo + e][c];
        }
        float * acc = a.partial + xq_attn_pair(a, split, t0, hk, r) * a.out_width + e0 + e;
        *acc = *acc * corr[r] + sum;
    }
}

// grid (n_head_kv * token chunks, n_splits), XQ_ATTN_THREADS threads
template <int G, typename TW>
static __global__ void __launch_bounds__(XQ_ATTN_THREADS) k_xq_attn(const xq_attn_args a) {
    __shared__ float xs[G][XQ_ATTN_CELLS + 1];                    // one group of the tile's X̂
    __shared__ float kv[XQ_ATTN_MAX_HEAD_DIM][XQ_ATTN_CELLS + 1]; // the tile's K, then plain V
    __shared__ float p[XQ_ATTN_ROWS][XQ_ATTN_CELLS];              // scores, then softmax weights
    __shared__ float row_max[XQ_ATTN_ROWS];
    __shared__ float row_sum[XQ_ATTN_ROWS];
    __shared__ float corr[XQ_ATTN_ROWS];
    __shared__ int exact_of[XQ_ATTN_CELLS];
    // "some query row sees the tile", one flag per tile in rotation: the flag of tile
    // i + 1 is cleared during tile i, after every read of it for tile i - 2
    __shared__ int visible[3];

    const int tid  = threadIdx.x;
    const int lane = tid % XQ_WARP;
    const int warp = tid / XQ_WARP;
    const int n_head_kv = a.n_head / a.n_gqa;
    const int hk = blockIdx.x % n_head_kv;
    const int t0 = blockIdx.x / n_head_kv * a.tokens_per_block;
    const int n_tok = min(a.tokens_per_block, a.n_tokens - t0);
    const int n_rows = n_tok * a.n_gqa;
    const int split = blockIdx.y;
    const int64_t D = a.head_dim;
    const TW * wk = (const TW *) a.wk;
    const TW * wv = (const TW *) a.wv;

    for (int idx = tid; idx < n_rows * a.out_width; idx += XQ_ATTN_THREADS) {
        a.partial[xq_attn_pair(a, split, t0, hk, idx / a.out_width) * a.out_width + idx % a.out_width] = 0.0f;
    }
    if (tid < n_rows) {
        row_max[tid] = -INFINITY;
        row_sum[tid] = 0.0f;
    }
    if (tid < 3) {
        visible[tid] = 0;
    }
    __syncthreads();

    const int tile0 = split * a.tiles_per_split;
    const int n_tiles = (a.n_kv + XQ_ATTN_CELLS - 1) / XQ_ATTN_CELLS;
    const int tile1 = min(tile0 + a.tiles_per_split, n_tiles);
    for (int tile = tile0; tile < tile1; ++tile) {
        const int cell0 = tile * XQ_ATTN_CELLS;
        const int cells = min(XQ_ATTN_CELLS, a.n_kv - cell0);
        // tiles that no row sees (other sequences, outside a window, empty cells) cost nothing
        int * seen = &visible[(tile - tile0) % 3];
        if (tid == 0) {
            visible[(tile - tile0 + 1) % 3] = 0;
        }
        for (int idx = tid; idx < n_tok * cells; idx += XQ_ATTN_THREADS) {
            if (xq_attn_mask(a, t0 + idx / cells, cell0 + idx % cells) != -INFINITY) {
                *seen = 1;
            }
        }
        if (tid < XQ_ATTN_CELLS) {
            exact_of[tid] = -1;
        }
        __syncthreads();
        if (!*seen) {
            continue;
        }
        for (int t = tid; t < a.n_exact; t += XQ_ATTN_THREADS) {
            const int64_t cell = a.idx64 ? ((const int64_t *) a.idxs)[t] : ((const int32_t *) a.idxs)[t];
            if (cell >= cell0 && cell < cell0 + cells) {
                exact_of[cell - cell0] = t;
            }
        }
        __syncthreads();

        // 1. K = w_k X̂[0 : k_width], group by group
        for (int g = 0; g * G < a.k_width; ++g) {
            xq_attn_load_group<G>(a, cell0, cells, g, exact_of, xs, lane, warp);
            __syncthreads();
            xq_attn_project(a, wk, a.ldwk, hk * D, g * G, 0, min(G, a.k_width - g * G), g == 0, xs, kv, tid);
            __syncthreads();
        }
        for (int c = tid; c < cells; c += XQ_ATTN_THREADS) {
            xq_attn_finish_k(a, hk, a.cell_pos[cell0 + c], kv, c);
        }
        __syncthreads();

        // 2. scores and the online softmax
        for (int idx = tid; idx < n_rows * XQ_ATTN_CELLS; idx += XQ_ATTN_THREADS) {
            const int r = idx / XQ_ATTN_CELLS;
            const int c = idx % XQ_ATTN_CELLS;
            const int t = t0 + r / a.n_gqa;
            float s = -INFINITY;
            const float m = c < cells ? xq_attn_mask(a, t, cell0 + c) : -INFINITY;
            if (m != -INFINITY) {
                const float * q = (const float *) ((const char *) a.q + t * a.nb_q2 + (hk * a.n_gqa + r % a.n_gqa) * a.nb_q1);
                float dot = 0.0f;
                for (int d = 0; d < D; ++d) {
                    dot += q[d] * kv[d][c];
                }
                s = dot * a.kq_scale + m;
            }
            p[r][c] = s;
        }
        __syncthreads();
        for (int r = tid; r < n_rows; r += XQ_ATTN_THREADS) {
            float tile_max = -INFINITY;
            for (int c = 0; c < XQ_ATTN_CELLS; ++c) {
                tile_max = fmaxf(tile_max, p[r][c]);
            }
            // a row that sees no cell of the tile keeps its state (exp(-inf) weights are 0)
            const float new_max = fmaxf(row_max[r], tile_max);
            corr[r] = new_max == -INFINITY ? 1.0f : expf(row_max[r] - new_max);
            float sum = 0.0f;
            for (int c = 0; c < XQ_ATTN_CELLS; ++c) {
                p[r][c] = p[r][c] == -INFINITY ? 0.0f : expf(p[r][c] - new_max);
                sum += p[r][c];
            }
            row_sum[r] = row_sum[r] * corr[r] + sum;
            row_max[r] = new_max;
        }
        __syncthreads();

        // 3. the weighted V source (absorbed) or the weighted w_v X̂ (plain), group by group
        for (int g = a.v_offset / G; g * G < a.width; ++g) {
            const int lo = max(0, a.v_offset - g * G);
            xq_attn_load_group<G>(a, cell0, cells, g, exact_of, xs, lane, warp);
            __syncthreads();
            if (wv) {
                xq_attn_project(a, wv, a.ldwv, hk * D, g * G - a.v_offset, lo, G, g == a.v_offset / G, xs, kv, tid);
            } else {
                xq_attn_accumulate(a, split, t0, hk, n_rows, p, corr, xs, lo, G, g * G + lo - a.v_offset, tid);
            }
            __syncthreads();
        }
        if (wv) {
            xq_attn_accumulate(a, split, t0, hk, n_rows, p, corr, kv, 0, a.head_dim, 0, tid);
            __syncthreads();
        }
    }

    if (tid < n_rows) {
        float * ms = a.max_sum + 2 * xq_attn_pair(a, split, t0, hk, tid);
        ms[0] = row_max[tid];
        ms[1] = row_sum[tid];
    }
}

// The splits of each (token, head) combined by their log-sum-exp into dst
// [out_width, n_tokens, n_head]: grid n_tokens * n_head, XQ_ATTN_THREADS threads.
static __global__ void __launch_bounds__(XQ_ATTN_THREADS) k_xq_attn_merge(const xq_attn_args a, const int n_splits,
        char * dst, const int64_t nb1, const int64_t nb2) {
    const int t = blockIdx.x / a.n_head;
    const int h = blockIdx.x % a.n_head;
    const int64_t split_stride = (int64_t) a.n_tokens * a.n_head;
    const int64_t pair = (int64_t) t * a.n_head + h;
    float max_all = -INFINITY;
    for (int s = 0; s < n_splits; ++s) {
        max_all = fmaxf(max_all, a.max_sum[2 * (s * split_stride + pair)]);
    }
    float sum_all = 0.0f;
    for (int s = 0; s < n_splits && max_all != -INFINITY; ++s) {
        const float * ms = a.max_sum + 2 * (s * split_stride + pair);
        sum_all += ms[0] == -INFINITY ? 0.0f : ms[1] * expf(ms[0] - max_all);
    }
    // no cell in view leaves a zero output, as softmax over nothing
    const float scale = sum_all > 0.0f ? 1.0f / sum_all : 0.0f;
    float * out = (float *) (dst + t * nb1 + h * nb2);
    for (int e = threadIdx.x; e < a.out_width; e += XQ_ATTN_THREADS) {
        float sum = 0.0f;
        for (int s = 0; s < n_splits && scale > 0.0f; ++s) {
            const float m = a.max_sum[2 * (s * split_stride + pair)];
            if (m != -INFINITY) {
                sum += a.partial[(s * split_stride + pair) * a.out_width + e] * expf(m - max_all);
            }
        }
        out[e] = sum * scale;
    }
}

// Host side, shared by xquant-attn.cu and the emulator test (native/tests/gpu-emulate):
// the kernels' arguments and grid for one XQ_ATTN node. target_blocks is how many
// blocks would fill the device; the splits make up what the kv heads and token chunks
// leave, never an empty one, and at most XQ_ATTN_MAX_SPLITS / n_tokens, so that the
// scratch stays within max(XQ_ATTN_MAX_SPLITS, n_tokens) rows per head (Metal reserves
// it by that rule). The caller points partial/max_sum at scratch of partial_floats and
// max_sum_floats.
// The f32 kernel reads f32 weights; the f16 kernel reads f16 ones, and the host first
// converts every other weight (quantized, or f32 beside another type) into an f16 copy.
static bool xq_attn_converts(const ggml_tensor * w, const bool f16_weights) {
    return w != nullptr && w->type != (f16_weights ? GGML_TYPE_F16 : GGML_TYPE_F32);
}

struct xq_attn_plan {
    xq_attn_args args;
    int group;
    bool f16_weights;
    int n_splits;
    unsigned grid_x;
    size_t partial_floats, max_sum_floats;
};

static xq_attn_plan xq_attn_plan_of(const ggml_tensor * dst, const int target_blocks) {
    const ggml_xq_attn_params p = ggml_xq_attn_get_params(dst);
    const ggml_tensor * q = dst->src[1];
    const ggml_tensor * wk = dst->src[2];
    const ggml_tensor * mask = dst->src[4];
    const ggml_tensor * exact = dst->src[5];
    const ggml_tensor * optional[4] = {};
    for (int i = 0, slot = GGML_XQ_ATTN_FIRST_OPTIONAL; i < 4; ++i) {
        if (p.flags & (1 << i)) {
            optional[i] = dst->src[slot++];
        }
    }
    const ggml_tensor * wv = optional[0];

    xq_attn_plan plan = {};
    xq_attn_args & a = plan.args;
    a.storage      = (const uint8_t *) dst->src[0]->data;
    a.q            = (const float *) q->data;
    a.wk           = wk->data;
    a.wv           = wv ? wv->data : nullptr;
    a.k_bias       = optional[1] ? (const float *) optional[1]->data : nullptr;
    a.k_norm       = optional[2] ? (const float *) optional[2]->data : nullptr;
    a.rope_factors = optional[3] ? (const float *) optional[3]->data : nullptr;
    a.cell_pos     = (const int32_t *) dst->src[3]->data;
    a.mask         = (const char *) mask->data;
    a.exact        = exact ? (const char *) exact->data : nullptr;
    a.idxs         = exact ? (const char *) dst->src[6]->data : nullptr;

    a.bits      = p.bits;
    a.width     = p.width;
    a.k_width   = (int) wk->ne[0];
    a.v_width   = p.v_width;
    a.v_offset  = p.width - p.v_width;
    a.out_width = (int) dst->ne[0];
    a.head_dim  = (int) q->ne[0];
    a.n_head    = (int) q->ne[1];
    a.n_tokens  = (int) q->ne[2];
    a.n_gqa     = (int) (q->ne[1] / (wk->ne[1] / q->ne[0]));
    a.n_kv      = (int) dst->src[3]->ne[0];
    a.n_exact   = exact ? (int) exact->ne[1] : 0;
    a.row_bytes = (int64_t) ggml_xq_row_bytes(p.width, p.bits);
    plan.f16_weights = wk->type != GGML_TYPE_F32 || (wv && wv->type != GGML_TYPE_F32);
    // a converted copy is contiguous
    const auto row_stride = [&](const ggml_tensor * w) {
        return xq_attn_converts(w, plan.f16_weights) ? w->ne[0] : (int64_t) (w->nb[1] / ggml_type_size(w->type));
    };
    a.ldwk      = row_stride(wk);
    a.ldwv      = wv ? row_stride(wv) : 0;
    a.nb_q1     = q->nb[1];
    a.nb_q2     = q->nb[2];
    a.nb_mask1  = mask->nb[1];
    a.nb_exact1 = exact ? exact->nb[1] : 0;
    a.mask_f16  = mask->type == GGML_TYPE_F16;
    a.idx64     = exact && dst->src[6]->type == GGML_TYPE_I64;
    a.kq_scale   = p.kq_scale;
    a.k_norm_eps = p.k_norm_eps;

    a.n_rot       = p.rope.n_rot;
    a.rope_neox   = p.rope.mode == GGML_ROPE_TYPE_NEOX;
    a.freq_scale  = p.rope.freq_scale;
    a.ext_factor  = p.rope.ext_factor;
    a.mscale      = p.rope.ext_factor != 0.0f ? p.rope.attn_factor * (1.0f + 0.1f * logf(1.0f / p.rope.freq_scale)) : p.rope.attn_factor;
    a.theta_scale = powf(p.rope.freq_base, -2.0f / p.rope.n_rot);
    ggml_rope_yarn_corr_dims(p.rope.n_rot, p.rope.n_ctx_orig, p.rope.freq_base, p.rope.beta_fast, p.rope.beta_slow, a.corr_dims);

    a.tokens_per_block = XQ_ATTN_ROWS / a.n_gqa;
    const int n_chunks = (a.n_tokens + a.tokens_per_block - 1) / a.tokens_per_block;
    const int n_tiles = (a.n_kv + XQ_ATTN_CELLS - 1) / XQ_ATTN_CELLS;
    const int blocks = (a.n_head / a.n_gqa) * n_chunks;
    const int wanted = std::clamp((target_blocks + blocks - 1) / blocks, 1, std::max(1, std::min(XQ_ATTN_MAX_SPLITS / a.n_tokens, n_tiles)));
    a.tiles_per_split = std::max(1, (n_tiles + wanted - 1) / wanted);
    plan.n_splits = std::max(1, (n_tiles + a.tiles_per_split - 1) / a.tiles_per_split);

    plan.group = ggml_xq_group_size(p.width);
    plan.grid_x = (unsigned) blocks;
    plan.partial_floats = (size_t) plan.n_splits * a.n_tokens * a.n_head * a.out_width;
    plan.max_sum_floats = (size_t) plan.n_splits * a.n_tokens * a.n_head * 2;
    return plan;
}
