// Runs our GPU kernels of GGML_OP_XQ_ATTN on the CPU (emulate.h) and compares them with
// the CPU backend's own XQ_ATTN on the same tensors: a ggml graph of ggml_xq_attn is
// computed by the CPU backend (loaded from the directory given as argv[1]), then the
// emulated kernels, launched as each backend's host code launches them, read the same
// tensors and overwrite the result. Built twice by native/tests/gpu-compile.test.ts:
// -DXQ_EMULATE_CUDA with ggml-cuda/xquant-kernels.cuh + xquant-attn-kernels.cuh as
// kernels.inc, and without it with kernels/xquant.metal (prepared by the test).
// Prints one JSON object.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-xquant.h"

#include <chrono>

// after the standard headers: the Metal shim defines address-space words away
#if defined(XQ_EMULATE_CUDA)
#include "cuda-shim.h"
#else
#include "metal-shim.h"
#endif
#include "kernels.inc"

// how many blocks the emulated device wants: small, so that the cases get several splits
static const int target_blocks = 8;

// body.operator()<G, TW>() for the kernel instance of a group size and weight type
template <class F>
static void with_instance(int group, bool f16_weights, F body) {
    const auto typed = [&]<int G>() {
        if (f16_weights) body.template operator()<G, half>();
        else             body.template operator()<G, float>();
    };
    switch (group) {
        case 128: typed.template operator()<128>(); break;
        case 64:  typed.template operator()<64>();  break;
        case 32:  typed.template operator()<32>();  break;
        default:  std::abort();
    }
}

#if defined(XQ_EMULATE_CUDA)
// ggml_get_to_fp16_cuda's types, as far as the CPU can tell: f32 and those with a dequantizer
static bool converts_to_f16(ggml_type type) {
    return type == GGML_TYPE_F32 || ggml_get_type_traits(type)->to_float != nullptr;
}

static const bool converts_weights = true;

static bool gpu_supported(const ggml_tensor * op) {
    return ggml_xq_attn_gpu_supported(op, XQ_ATTN_MAX_HEAD_DIM, XQ_ATTN_ROWS, converts_to_f16);
}

// w as f16 values, converted on the host as ggml_get_to_fp16_cuda converts it on the device
static std::vector<ggml_fp16_t> f16_copy(const ggml_tensor * w) {
    std::vector<float> values(ggml_nelements(w));
    if (w->type == GGML_TYPE_F32) std::memcpy(values.data(), w->data, values.size() * sizeof(float));
    else                          ggml_get_type_traits(w->type)->to_float(w->data, values.data(), (int64_t) values.size());
    std::vector<ggml_fp16_t> copy(values.size());
    ggml_fp32_to_fp16_row(values.data(), copy.data(), (int64_t) values.size());
    return copy;
}

// as ggml_cuda_op_xq_attn (ggml-cuda/xquant-attn.cu), the pool's scratch full of NaN
static int run_attn(ggml_tensor * dst) {
    xq_attn_plan plan = xq_attn_plan_of(dst, target_blocks);
    std::vector<float> partial(plan.partial_floats, NAN), max_sum(plan.max_sum_floats, NAN);
    plan.args.partial = partial.data();
    plan.args.max_sum = max_sum.data();
    const ggml_tensor * wk = dst->src[2];
    const ggml_tensor * wv = plan.args.wv ? dst->src[GGML_XQ_ATTN_FIRST_OPTIONAL] : nullptr;
    std::vector<ggml_fp16_t> wk_f16, wv_f16;
    if (xq_attn_converts(wk, plan.f16_weights)) {
        wk_f16 = f16_copy(wk);
        plan.args.wk = wk_f16.data();
    }
    if (xq_attn_converts(wv, plan.f16_weights)) {
        wv_f16 = f16_copy(wv);
        plan.args.wv = wv_f16.data();
    }
    with_instance(plan.group, plan.f16_weights, [&]<int G, typename TW>() {
        emu_launch(plan.grid_x, (unsigned) plan.n_splits, XQ_ATTN_THREADS, [&](unsigned x, unsigned y, int t) {
            blockIdx = { x, y, 0 };
            threadIdx = { (unsigned) t, 0, 0 };
            k_xq_attn<G, TW>(plan.args);
        });
    });
    emu_launch((unsigned) (plan.args.n_tokens * plan.args.n_head), 1, XQ_ATTN_THREADS, [&](unsigned x, unsigned y, int t) {
        blockIdx = { x, y, 0 };
        threadIdx = { (unsigned) t, 0, 0 };
        k_xq_attn_merge(plan.args, plan.n_splits, (char *) dst->data, dst->nb[1], dst->nb[2]);
    });
    return plan.n_splits;
}
#else
// as ggml_metal_op_xq_attn (patch 0004, ggml-metal-ops.cpp), the scratch after dst full of NaN
static int run_attn(ggml_tensor * op) {
    const ggml_xq_attn_params p = ggml_xq_attn_get_params(op);
    const ggml_tensor * q = op->src[1];
    const ggml_tensor * wk = op->src[2];
    const ggml_tensor * exact = op->src[5];
    const ggml_tensor * optional[4] = {};
    for (int i = 0, slot = GGML_XQ_ATTN_FIRST_OPTIONAL; i < 4; ++i) {
        if (p.flags & (1 << i)) optional[i] = op->src[slot++];
    }
    const ggml_tensor * wv = optional[0];
    const int n_head = (int) q->ne[1];
    const int n_tokens = (int) q->ne[2];
    const int n_gqa = (int) (n_head / (wk->ne[1] / q->ne[0]));
    const int n_kv = (int) op->src[3]->ne[0];
    const int max_splits = std::max(1, OP_XQ_ATTN_MAX_SPLITS / n_tokens);
    const int tokens_per_block = OP_XQ_ATTN_ROWS / n_gqa;
    const int n_groups = (n_head / n_gqa) * ((n_tokens + tokens_per_block - 1) / tokens_per_block);
    const int n_tiles = (n_kv + OP_XQ_ATTN_CELLS - 1) / OP_XQ_ATTN_CELLS;
    const int wanted = std::clamp((64 + n_groups - 1) / n_groups, 1, std::max(1, std::min(max_splits, n_tiles)));
    const int tiles_per_split = std::max(1, (n_tiles + wanted - 1) / wanted);
    const int n_splits = std::max(1, (n_tiles + tiles_per_split - 1) / tiles_per_split);
    float corr_dims[2];
    ggml_rope_yarn_corr_dims(p.rope.n_rot, p.rope.n_ctx_orig, p.rope.freq_base, p.rope.beta_fast, p.rope.beta_slow, corr_dims);
    ggml_metal_kargs_xq_attn args = {
        p.bits, p.width, (int32_t) wk->ne[0], p.width - p.v_width, p.v_width, (int32_t) op->ne[0],
        (int32_t) q->ne[0], n_head, n_gqa, n_kv, n_tokens, exact ? (int32_t) exact->ne[1] : 0,
        tokens_per_block, tiles_per_split, n_splits,
        wv != nullptr, optional[1] != nullptr, optional[2] != nullptr, optional[3] != nullptr,
        op->src[4]->type == GGML_TYPE_F16, exact && op->src[6]->type == GGML_TYPE_I64,
        p.rope.n_rot, p.rope.mode == GGML_ROPE_TYPE_NEOX,
        p.kq_scale, p.k_norm_eps, p.rope.freq_scale, p.rope.ext_factor,
        p.rope.ext_factor != 0.0f ? p.rope.attn_factor * (1.0f + 0.1f * logf(1.0f / p.rope.freq_scale)) : p.rope.attn_factor,
        powf(p.rope.freq_base, -2.0f / p.rope.n_rot), { corr_dims[0], corr_dims[1] },
        ggml_xq_row_bytes(p.width, p.bits), wk->nb[1] / ggml_type_size(wk->type), wv ? wv->nb[1] / ggml_type_size(wv->type) : 0,
        q->nb[1], q->nb[2], op->src[4]->nb[1], exact ? exact->nb[1] : 0, op->nb[1], op->nb[2],
    };
    // as much as ggml_metal_op_xq_attn_extra_tmp reserves
    std::vector<float> tmp((size_t) max_splits * op->ne[1] * op->ne[2] * (op->ne[0] + 2), NAN);
    char * scratch = (char *) tmp.data();
    // absent sources bind storage in their slot
    const auto bound = [op](const ggml_tensor * t) { return (const char *) (t ? t : op->src[0])->data; };
    with_instance(ggml_xq_group_size(p.width), wk->type == GGML_TYPE_F16, [&]<int G, typename TW>() {
        emu_launch((unsigned) n_groups, (unsigned) n_splits, OP_XQ_ATTN_THREADS, [&](unsigned x, unsigned y, int t) {
            kernel_xq_attn<G, TW>(args, bound(op->src[0]), bound(op->src[1]), bound(op->src[2]), bound(optional[0]), bound(optional[1]),
                bound(optional[2]), bound(optional[3]), bound(op->src[3]), bound(op->src[4]), bound(op->src[5]), bound(op->src[6]), scratch,
                uint2{ x, y }, (ushort) t, (ushort) (t % 32), (ushort) (t / 32));
        });
    });
    emu_launch((unsigned) (n_tokens * n_head), 1, OP_XQ_ATTN_THREADS, [&](unsigned x, unsigned, int t) {
        kernel_xq_attn_merge(args, scratch, (char *) op->data, x, (ushort) t);
    });
    return n_splits;
}

// as ggml_metal_device_supports_xq_attn (patch 0004): Metal converts no weights
static const bool converts_weights = false;

static bool gpu_supported(const ggml_tensor * op) {
    return ggml_xq_attn_gpu_supported(op, OP_XQ_ATTN_MAX_HEAD_DIM, OP_XQ_ATTN_ROWS, nullptr);
}
#endif

// supports_op must refuse op with a flag the kernels do not know (the cross-layer
// variant's) or a weight type no backend converts
static int refusal_mismatches(ggml_tensor * op) {
    ggml_xq_attn_params p = ggml_xq_attn_get_params(op);
    p.flags |= 1 << 4;
    std::memcpy(op->op_params, &p, sizeof(p));
    int mismatches = gpu_supported(op);
    p.flags &= ~(1 << 4);
    std::memcpy(op->op_params, &p, sizeof(p));
    const ggml_type type_w = op->src[2]->type;
    op->src[2]->type = GGML_TYPE_I32;
    mismatches += gpu_supported(op);
    op->src[2]->type = type_w;
    return mismatches;
}

struct attn_case {
    int bits;
    int64_t width, k_width, v_width, head_dim, n_head, n_head_kv, n_kv, n_tokens;
    ggml_type type_wk, type_wv; // wv's only where not absorbed (plain_v)
    bool plain_v, neox, bias, norm, factors, yarn, mask_f16, idx32, padded_token;
};

// the weights the kernels read as they are (f32, or f16, of one type) or through f16 copies
enum weight_kind { WEIGHTS_F32, WEIGHTS_F16, WEIGHTS_CONVERTED };

static weight_kind weight_kind_of(const attn_case & k) {
    const bool one_type = !k.plain_v || k.type_wv == k.type_wk;
    if (one_type && k.type_wk == GGML_TYPE_F32) return WEIGHTS_F32;
    if (one_type && k.type_wk == GGML_TYPE_F16) return WEIGHTS_F16;
    return WEIGHTS_CONVERTED;
}

struct totals {
    int cases = 0;
    int splits_max = 0;
    int refused = 0; // cases the backend's supports_op refuses, as it should
    int supports_op_mismatches = 0;
    double nmse_max[3] = { 0.0, 0.0, 0.0 }; // by weight_kind
    double padded_max_abs = 0.0;
};

static void fill(ggml_tensor * t, std::mt19937 & rng, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(ggml_nelements(t));
    for (float & x : v) x = dist(rng);
    if (t->type == GGML_TYPE_F32) {
        std::memcpy(t->data, v.data(), v.size() * sizeof(float));
    } else {
        ggml_quantize_chunk(t->type, v.data(), t->data, 0, ggml_nrows(t), t->ne[0], nullptr);
    }
}

static void run_case(totals & r, const attn_case & k, ggml_backend_t cpu, std::mt19937 & rng) {
    const int64_t d_kv = k.head_dim * k.n_head_kv;
    const size_t row_bytes = ggml_xq_row_bytes(k.width, k.bits);
    ggml_init_params params = { 64 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(params);
    ggml_tensor * storage = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, (int64_t) row_bytes * k.n_kv);
    ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k.head_dim, k.n_head, k.n_tokens);
    ggml_tensor * wk = ggml_new_tensor_2d(ctx, k.type_wk, k.k_width, d_kv);
    ggml_tensor * wv = k.plain_v ? ggml_new_tensor_2d(ctx, k.type_wv, k.v_width, d_kv) : nullptr;
    ggml_tensor * k_bias = k.bias ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, d_kv) : nullptr;
    ggml_tensor * k_norm = k.norm ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, k.head_dim) : nullptr;
    ggml_tensor * factors = k.factors ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, k.head_dim / 2) : nullptr;
    ggml_tensor * cell_pos = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, k.n_kv);
    ggml_tensor * mask = ggml_new_tensor_2d(ctx, k.mask_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32, k.n_kv, k.n_tokens);
    // the ubatch's own cells (the last n_tokens) come from exact rows
    ggml_tensor * exact = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k.width, k.n_tokens);
    ggml_tensor * idxs = ggml_new_tensor_1d(ctx, k.idx32 ? GGML_TYPE_I32 : GGML_TYPE_I64, k.n_tokens);
    const ggml_xq_attn_rope rope = { (int) k.head_dim, k.neox ? GGML_ROPE_TYPE_NEOX : GGML_ROPE_TYPE_NORMAL, 4096, 10000.0f,
        k.yarn ? 0.25f : 1.0f, k.yarn ? 1.0f : 0.0f, 1.0f, 32.0f, 1.0f };
    ggml_tensor * out = ggml_xq_attn(ctx, storage, q, wk, wv, cell_pos, k.width, k.bits, 1.0f / std::sqrt((float) k.head_dim), &rope);
    ggml_xq_attn_set_mask(out, mask);
    ggml_xq_attn_set_exact_rows(out, exact, idxs);
    if (k_bias) {
        ggml_xq_attn_set_k_bias(out, k_bias);
    }
    if (k_norm) {
        ggml_xq_attn_set_k_norm(out, k_norm, 1e-6f);
    }
    if (factors) {
        ggml_xq_attn_set_rope_factors(out, factors);
    }
    ggml_cgraph * graph = ggml_new_graph(ctx);
    ggml_build_forward_expand(graph, out);
    ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(ctx, cpu);

    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    std::vector<float> row(k.width);
    for (int64_t c = 0; c < k.n_kv; ++c) {
        for (float & x : row) x = unit(rng);
        ggml_xq_quantize_row(row.data(), (uint8_t *) storage->data + c * row_bytes, k.width, k.bits);
    }
    // scores spread enough for the softmax's running max to matter
    fill(q, rng, -2.0f, 2.0f);
    for (ggml_tensor * w : { wk, wv }) {
        if (w) fill(w, rng, -0.1f, 0.1f);
    }
    for (ggml_tensor * t : { k_bias, k_norm }) {
        if (t) fill(t, rng, 0.5f, 1.5f);
    }
    if (factors) fill(factors, rng, 1.0f, 4.0f);
    fill(exact, rng, -1.0f, 1.0f);
    for (int64_t c = 0; c < k.n_kv; ++c) {
        // far positions under YaRN: the angles reach 1e4 radians
        ((int32_t *) cell_pos->data)[c] = (int32_t) (k.yarn ? 40000 + 5 * c : 7 + 3 * c);
    }
    for (int64_t t = 0; t < k.n_tokens; ++t) {
        const int64_t cell = k.n_kv - k.n_tokens + t;
        if (k.idx32) ((int32_t *) idxs->data)[t] = (int32_t) cell;
        else         ((int64_t *) idxs->data)[t] = cell;
    }
    // causal over the ubatch's cells, plus cells of another sequence (every 9th) and a
    // tile no token sees (cells 16-31); a padded ubatch's last token sees nothing
    std::vector<float> mask_values(k.n_kv * k.n_tokens);
    for (int64_t t = 0; t < k.n_tokens; ++t) {
        const bool padded = k.padded_token && t == k.n_tokens - 1;
        for (int64_t c = 0; c < k.n_kv; ++c) {
            const bool hidden = padded || c > k.n_kv - k.n_tokens + t || c % 9 == 4 || (c >= 16 && c < 32);
            mask_values[t * k.n_kv + c] = hidden ? -INFINITY : 0.0f;
        }
    }
    if (k.mask_f16) ggml_fp32_to_fp16_row(mask_values.data(), (ggml_fp16_t *) mask->data, (int64_t) mask_values.size());
    else            std::memcpy(mask->data, mask_values.data(), mask_values.size() * sizeof(float));

    if (ggml_backend_graph_compute(cpu, graph) != GGML_STATUS_SUCCESS) std::abort();
    std::vector<float> want((const float *) out->data, (const float *) out->data + ggml_nelements(out));
    std::fill((float *) out->data, (float *) out->data + ggml_nelements(out), NAN);
    const weight_kind kind = weight_kind_of(k);
    // CUDA takes every case; Metal every case but converted weights
    const bool taken = gpu_supported(out);
    r.supports_op_mismatches += refusal_mismatches(out) + (taken != (kind != WEIGHTS_CONVERTED || converts_weights));
    if (!taken) {
        r.refused++;
        ggml_backend_buffer_free(buffer);
        ggml_free(ctx);
        return;
    }
    r.splits_max = std::max(r.splits_max, run_attn(out));

    const float * got = (const float *) out->data;
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < ggml_nelements(out); ++i) {
        num += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
        den += (double) want[i] * want[i];
    }
    const double nmse = std::isfinite(num) ? num / den : INFINITY;
    r.nmse_max[kind] = std::max(r.nmse_max[kind], nmse);
    if (k.padded_token) {
        // out is [out_width, n_tokens, n_head]: the padded token's rows must be zero
        for (int64_t h = 0; h < k.n_head; ++h) {
            const float * o = (const float *) ((const char *) out->data + (k.n_tokens - 1) * out->nb[1] + h * out->nb[2]);
            for (int64_t e = 0; e < out->ne[0]; ++e) r.padded_max_abs = std::max(r.padded_max_abs, (double) std::fabs(o[e]));
        }
    }
    std::fprintf(stderr, "bits %d width %lld k/v %lld/%lld D %lld heads %lld/%lld n_kv %lld tokens %lld %s/%s %s %s%s%s%s%s%s: nmse %.3e\n",
        k.bits, (long long) k.width, (long long) k.k_width, (long long) k.v_width, (long long) k.head_dim, (long long) k.n_head,
        (long long) k.n_head_kv, (long long) k.n_kv, (long long) k.n_tokens, ggml_type_name(k.type_wk),
        k.plain_v ? ggml_type_name(k.type_wv) : "-", k.plain_v ? "plain" : "absorbed",
        k.neox ? "neox" : "normal", k.bias ? " bias" : "", k.norm ? " norm" : "", k.factors ? " factors" : "", k.yarn ? " yarn" : "",
        k.padded_token ? " padded" : "", nmse);
    r.cases++;
    ggml_backend_buffer_free(buffer);
    ggml_free(ctx);
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <directory of the ggml CPU backend>\n", argv[0]);
        return 2;
    }
    ggml_backend_load_all_from_path(argv[1]);
    ggml_backend_t cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (!cpu) {
        std::fprintf(stderr, "no CPU backend in %s\n", argv[1]);
        return 1;
    }
    // bits, width, k_width, v_width, head_dim, n_head, n_head_kv, n_kv, n_tokens,
    // type_wk, type_wv, plain_v, neox, bias, norm, factors, yarn, mask_f16, idx32, padded_token
    const ggml_type F32 = GGML_TYPE_F32, F16 = GGML_TYPE_F16;
    const ggml_type Q4_0 = GGML_TYPE_Q4_0, Q4_K = GGML_TYPE_Q4_K, Q6_K = GGML_TYPE_Q6_K, Q8_0 = GGML_TYPE_Q8_0;
    const attn_case cases[] = {
        // decode steps: 100 cells are 7 tiles, in 4 splits
        { 4,  256, 256, 256, 64,  4, 2, 100, 1, F32,  F32,  false, false, false, false, false, false, false, false, false },
        { 2,  256, 256, 256, 64,  4, 2, 100, 1, F16,  F16,  true,  true,  true,  true,  false, false, false, true,  false },
        { 8,  256, 256, 256, 64,  4, 2, 100, 1, F32,  F32,  true,  false, false, false, true,  true,  true,  false, false },
        { 16, 256, 256, 256, 64,  4, 2, 100, 1, F16,  F16,  false, true,  true,  true,  true,  false, false, false, false },
        // ubatches of 5 tokens
        { 4,  256, 256, 256, 64,  4, 2, 100, 5, F16,  F16,  false, true,  false, true,  false, false, true,  false, true },
        { 2,  256, 256, 256, 64,  4, 2, 100, 5, F32,  F32,  true,  false, true,  false, true,  false, false, true,  false },
        { 8,  256, 256, 256, 64,  4, 2, 100, 5, F16,  F16,  true,  true,  false, false, false, false, false, false, true },
        { 16, 256, 256, 256, 64,  4, 2, 100, 5, F32,  F32,  false, false, true,  true,  true,  true,  false, false, false },
        // the GQA latent layout: K from the row's first half, V from its second, inside one group of 128
        { 4,  128, 64,  64,  32,  4, 2, 60,  1, F32,  F32,  false, true,  false, false, false, false, false, false, false },
        { 4,  128, 64,  64,  32,  4, 2, 60,  5, F16,  F16,  true,  false, true,  false, false, false, false, false, false },
        // groups of 32 and 64, one kv head per query head, head_dim 128
        { 2,  96,  96,  96,  32,  2, 2, 40,  5, F32,  F32,  true,  true,  false, true,  false, false, false, false, false },
        { 8,  192, 192, 192, 128, 2, 1, 40,  1, F16,  F16,  false, false, false, false, false, false, false, false, false },
        // a quantized GGUF's weights (CUDA converts them to f16 copies; Metal refuses them):
        // Q4_0, Q4_K_M's Q4_K wk with Q6_K wv, Q8_0 absorbed, f16 wk beside f32 wv
        { 4,  256, 256, 256, 64,  4, 2, 100, 1, Q4_0, Q4_0, true,  true,  false, false, false, false, false, false, false },
        { 3,  256, 256, 256, 64,  4, 2, 100, 5, Q4_K, Q6_K, true,  false, true,  true,  false, false, true,  false, false },
        { 2,  128, 64,  64,  32,  4, 2, 60,  1, Q8_0, Q8_0, false, true,  false, false, true,  false, false, true,  false },
        { 8,  256, 256, 256, 64,  4, 2, 100, 1, F16,  F32,  true,  false, false, true,  false, false, false, false, false },
    };
    std::mt19937 rng(7);
    totals r;
    const auto start = std::chrono::steady_clock::now();
    for (const attn_case & k : cases) run_case(r, k, cpu, rng);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"cases\": %d, \"refused\": %d, \"splitsMax\": %d, \"supportsOpMismatches\": %d, \"nmseMaxF32\": %.3e, \"nmseMaxF16\": %.3e, \"nmseMaxConverted\": %.3e, \"paddedMaxAbs\": %.3e, \"seconds\": %.1f}\n",
        r.cases, r.refused, r.splits_max, r.supports_op_mismatches, r.nmse_max[WEIGHTS_F32], r.nmse_max[WEIGHTS_F16],
        r.nmse_max[WEIGHTS_CONVERTED], r.padded_max_abs, seconds);
    ggml_backend_free(cpu);
    return 0;
}
