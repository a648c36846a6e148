// XQuant attention: store this ubatch's rows in the X-cache (X, cross-layer
// residual deltas, or GQA latents, by variant), rebuild K of every cell in view
// from the stored rows (the ubatch's own cells from its unquantized rows), and
// run llama.cpp's own attention, either on a rebuilt V or with V absorbed.
#include "xquant-graph.h"
#include "xquant-cache.h"
#include "xquant-latent.h"
#include "xquant-options.h"
#include "xquant-quant.h"

#include "llama-graph.h"
#include "llama-kv-cache.h"
#include "llama-model.h"

#include "ggml-backend.h"
#include "ggml-xquant.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>

// Positions of the cells in view, for RoPE on the rebuilt K.
class llm_graph_input_xq_pos : public llm_graph_input_i {
public:
    explicit llm_graph_input_xq_pos(const llama_kv_cache_context * mctx) : mctx(mctx) {}

    void set_input(const llama_ubatch * ubatch) override {
        GGML_UNUSED(ubatch);
        mctx->set_input_cell_pos(cell_pos);
    }

    ggml_tensor * cell_pos = nullptr; // I32 [n_kv]

    const llama_kv_cache_context * mctx;
};

void llama_kv_cache_context::set_input_cell_pos(ggml_tensor * dst) const {
    GGML_ASSERT(ggml_backend_buffer_is_host(dst->buffer));
    int32_t * data = (int32_t *) dst->data;
    const auto & cells = kv->get_cells(0);
    for (int64_t i = 0; i < dst->ne[0]; ++i) {
        // empty cells are masked out; any position will do
        data[i] = i < (int64_t) cells.size() && !cells.is_empty(i) ? cells.pos_get(i) : 0;
    }
}

// The tokens' visibility for XQ_ATTN on the CPU, instead of an n_kv x n_tokens mask: the
// cells' side is the cache's cell table, outside the compute buffer.
class llm_graph_input_xq_visibility : public llm_graph_input_i {
public:
    explicit llm_graph_input_xq_visibility(const llama_kv_cache_context * mctx) : mctx(mctx) {}

    void set_input(const llama_ubatch * ubatch) override {
        mctx->set_input_xq_visibility(tokens, ubatch);
    }

    ggml_tensor * tokens = nullptr; // I32 [3, n_tokens]

    const llama_kv_cache_context * mctx;
};

ggml_tensor * llama_kv_cache::get_xq_cell_table() {
    if (xq_cell_table_ctx == nullptr) {
        const ggml_init_params params = { ggml_tensor_overhead(), nullptr, true };
        ggml_context_ptr ctx(ggml_init(params));
        // a row of positions, then the sequences as bits, 32 a row
        ggml_new_tensor_2d(ctx.get(), GGML_TYPE_I32, get_size(), 1 + (n_seq_max + 31) / 32);
        ggml_backend_buffer_ptr buf(ggml_backend_alloc_ctx_tensors_from_buft(ctx.get(), ggml_backend_cpu_buffer_type()));
        if (buf == nullptr) {
            throw std::runtime_error("failed to allocate the XQuant cell table");
        }
        xq_cell_table_ctx = std::move(ctx);
        xq_cell_table_buf = std::move(buf);
    }
    return ggml_get_first_tensor(xq_cell_table_ctx.get());
}

// As llama.cpp's mask (set_input_kq_mask) under causal attention: a token sees the cells of
// its first sequence up to its own position and, in a sliding-window cache, inside the window
// (llama_hparams::is_masked_swa), which is a range of positions for every window type.
void llama_kv_cache::set_input_xq_visibility(ggml_tensor * tokens, const llama_ubatch * ubatch, uint32_t n_kv) const {
    GGML_ASSERT(n_stream == 1 && xq_cell_table_ctx != nullptr);
    GGML_ASSERT(ggml_backend_buffer_is_host(tokens->buffer) && tokens->ne[1] == ubatch->n_tokens);
    const ggml_tensor * table = ggml_get_first_tensor(xq_cell_table_ctx.get());
    int32_t * cell_pos = (int32_t *) table->data;
    const llama_kv_cells & cells = v_cells[0];
    GGML_ASSERT(n_kv <= cells.size());
    for (uint32_t i = 0; i < n_kv; ++i) {
        cell_pos[i] = cells.is_empty(i) ? 0 : cells.pos_get(i);
    }
    for (int64_t word = 0; word + 1 < table->ne[1]; ++word) {
        uint32_t * cell_seqs = (uint32_t *) ((char *) table->data + (word + 1) * table->nb[1]);
        const uint32_t first = (uint32_t) word * 32;
        const uint32_t end = std::min<uint32_t>(first + 32, n_seq_max);
        for (uint32_t i = 0; i < n_kv; ++i) {
            uint32_t seqs = 0;
            for (uint32_t s = first; s < end && !cells.is_empty(i); ++s) {
                seqs |= (uint32_t) cells.seq_has(i, s) << (s - first);
            }
            cell_seqs[i] = seqs;
        }
    }
    for (uint32_t t = 0; t < ubatch->n_tokens; ++t) {
        const int64_t p = ubatch->pos[t];
        int64_t lowest = INT32_MIN;
        int64_t highest = p;
        switch (swa_type) {
            case LLAMA_SWA_TYPE_NONE:
                break;
            case LLAMA_SWA_TYPE_STANDARD:
                lowest = p - n_swa + 1;
                break;
            case LLAMA_SWA_TYPE_CHUNKED:
                lowest = p / n_swa * n_swa;
                break;
            case LLAMA_SWA_TYPE_SYMMETRIC:
                lowest = p - (int64_t) n_swa / 2;
                break;
        }
        int32_t * token = (int32_t *) ((char *) tokens->data + t * tokens->nb[1]);
        token[0] = ubatch->seq_id[t][0];
        token[1] = (int32_t) std::max<int64_t>(lowest, INT32_MIN);
        token[2] = (int32_t) highest;
    }
}

ggml_tensor * llama_kv_cache_context::get_xq_cells(ggml_context * ctx) const {
    ggml_tensor * table = kv->get_xq_cell_table();
    return ggml_view_2d(ctx, table, n_kv, table->ne[1], table->nb[1], 0);
}

void llama_kv_cache_context::set_input_xq_visibility(ggml_tensor * tokens, const llama_ubatch * ubatch) const {
    kv->set_input_xq_visibility(tokens, ubatch, (uint32_t) n_kv);
}

namespace {

// Which path one layer's attention takes, decided once (xq_attn_builder::plan).
struct xq_attn_plan {
    int32_t variant = XQ_VARIANT_X;
    bool delta = false;           // past the base layers: cross-layer cells store deltas
    bool swa_layer = false;       // a sliding-window layer, whose cache holds other cells
    bool weights_on_host = false; // the op's K and V weights are in host memory
    bool fused = false;           // build XQ_ATTN (off the host, used where the weights' device runs it)
    bool fused_absorb = false;    // the op weights V's source, and Wv goes after it
    bool projected_store = false; // GQA-CL through the op stores project * (X - the earlier layers' lifted sum)
    ggml_tensor * k_w = nullptr;  // K's weight for the op: wk, or the latent's rebuild_k
    ggml_tensor * v_w = nullptr;  // V's likewise
    ggml_tensor * rope_factors = nullptr;
    const xq_latent_factors::layer * factors = nullptr; // latent variants only
};

// What a cell stores, and what it is a delta against (stored = rows - base):
//  X:          X
//  CL:         the residual stream entering the layer; after the base layers,
//              a delta against the previous layer's reconstruction (error feedback)
//  LATENT:     [Q_kᵀ X; Q_vᵀ X], the coordinates of X in Wk's and Wv's row spaces, from
//              K and V through the whiten factors
//  LATENT_CL:  Qᵀ X in the joint [Wk; Wv] row space; after the base layers, a
//              delta against the previous layer's reconstruction in that space
struct xq_stored_rows {
    ggml_tensor * rows = nullptr;   // the ubatch's rows before quantization
    ggml_tensor * base = nullptr;   // what they are a delta against, if anything
    ggml_tensor * stored = nullptr; // the cache after the store
    int64_t width = 0;              // the stored rows' channels
};

// Where the GEMM path rebuilds K and V from: K = k_w · k_src, V = v_w · v_src.
struct xq_gemm_sources {
    ggml_tensor * k_src;
    ggml_tensor * v_src;
    ggml_tensor * k_w;
    ggml_tensor * v_w;
};

// One layer's XQuant attention, in steps: plan, store, then the fused op or the GEMM path.
class xq_attn_builder {
public:
    xq_attn_builder(const llm_graph_context & graph, const llama_kv_cache_context * mctx, ggml_tensor * k_idxs,
            ggml_tensor * kq_mask, ggml_tensor * q_cur, float kq_scale, int il)
        : g(graph), ctx0(graph.ctx0), xq(graph.xq), layer(*graph.xq.layer), mctx(mctx), k_idxs(k_idxs),
          kq_mask(kq_mask), q_cur(q_cur), kq_scale(kq_scale), il(il), bits(xq_layer_bits(graph.cparams, il)),
          n_embd_head(graph.hparams.n_embd_head_k(il)), n_head_q(graph.hparams.n_head(il)),
          n_head_kv(graph.hparams.n_head_kv(il)), n_embd_kv(n_embd_head * n_head_kv), n_kv(mctx->get_n_kv()) {}

    xq_attn_plan plan(ggml_tensor * kq_b, ggml_tensor * sinks) const;
    xq_stored_rows store(const xq_attn_plan & p, ggml_tensor * v_idxs);
    // the heads' outputs through XQ_ATTN, or null where the weights' device does not run it
    ggml_tensor * fused_attention(const xq_attn_plan & p, const xq_stored_rows & s);
    ggml_tensor * gemm_attention(const xq_attn_plan & p, const xq_stored_rows & s, ggml_tensor * kq_b, ggml_tensor * sinks);

private:
    bool fits_op(const xq_attn_plan & p, ggml_tensor * kq_b, ggml_tensor * sinks) const;
    bool runs_with_weights(const xq_attn_plan & p, ggml_tensor * op) const;
    ggml_tensor * cell_positions(bool swa_layer);
    ggml_tensor * token_visibility(bool swa_layer);
    ggml_xq_attn_rope rope_params(bool swa_layer) const;
    ggml_tensor * fused_heads(const xq_attn_plan & p, ggml_tensor * cur) const;
    ggml_tensor * exact_ubatch(ggml_tensor * loaded_rows, ggml_tensor * exact_rows) const;
    xq_gemm_sources gemm_sources(const xq_attn_plan & p, const xq_stored_rows & s);
    ggml_tensor * project(const xq_attn_plan & p, ggml_tensor * w, ggml_tensor * src, ggml_tensor * scale, ggml_tensor * bias, const char * name) const;
    ggml_tensor * rebuilt_k(const xq_attn_plan & p, const xq_gemm_sources & src);

    const llm_graph_context & g;
    ggml_context * ctx0;
    llm_graph_xq_state & xq;
    const llama_layer & layer;
    const llama_kv_cache_context * mctx;
    ggml_tensor * k_idxs;
    ggml_tensor * kq_mask;
    ggml_tensor * q_cur;
    const float kq_scale;
    const int il;
    const int bits;
    const int64_t n_embd_head, n_head_q, n_head_kv, n_embd_kv, n_kv;
};

// The fused op (XQ_ATTN) rebuilds K (and V unless absorbed) block by block inside the
// attention, so no tensor grows with the context. It covers X and the GQA latent on weights
// in host memory (the CPU kernel) or on a device whose backend runs the op (the CUDA and
// Metal kernels: f32/f16 weights), and XQuant-CL (and, when asked, GQA-CL) on host weights.
// These sum each cell's deltas of every layer so far inside the op (ggml_xq_layers; GQA-CL
// lifts each through its layer's factor, ggml_xq_layers_lifted), so they take the op only
// while the layers before them did.
xq_attn_plan xq_attn_builder::plan(ggml_tensor * kq_b, ggml_tensor * sinks) const {
    const llama_cparams & cparams = g.cparams;
    const llama_hparams & hparams = g.hparams;
    xq_attn_plan p;
    p.variant = xq_variant_of(cparams);
    p.delta = (uint32_t) il >= cparams.xq_base_layers_resolved;
    p.swa_layer = hparams.is_swa(il);
    p.factors = cparams.xq_factors ? &cparams.xq_factors->layers[il] : nullptr;
    p.rope_factors = layer.rope_freqs ? layer.rope_freqs
        : cparams.n_ctx_seq > hparams.n_ctx_orig_yarn ? layer.rope_long : layer.rope_short;
    const bool latent = p.variant == XQ_VARIANT_LATENT;
    p.k_w = latent ? (p.factors ? p.factors->rebuild_k : nullptr) : layer.wk;
    p.v_w = latent ? (p.factors ? p.factors->rebuild_v : nullptr) : layer.wv;
    p.fused_absorb = xq_absorb_v(cparams) && g.n_tokens * n_head_q < n_embd_kv;
    p.weights_on_host = ggml_backend_buffer_is_host(p.k_w->buffer) && ggml_backend_buffer_is_host(p.v_w->buffer);
    const bool chain_in_op = !p.delta || xq.layers != nullptr;
    const bool norm_on_host = layer.attn_norm != nullptr && layer.attn_norm->type == GGML_TYPE_F32
        && ggml_backend_buffer_is_host(layer.attn_norm->buffer);
    const bool fused_variant = p.variant == XQ_VARIANT_X || latent
        || (p.variant == XQ_VARIANT_CROSS_LAYER && p.weights_on_host && chain_in_op && norm_on_host)
        || (p.variant == XQ_VARIANT_LATENT_CL && xq_fused_gqa_cl(cparams) && p.weights_on_host && chain_in_op);
    p.fused = xq_fused_attn(cparams) && fused_variant && fits_op(p, kq_b, sinks);
    p.projected_store = p.variant == XQ_VARIANT_LATENT_CL && p.fused && p.delta;
    return p;
}

// The rest of llama.cpp's attention features (KQ bias, sinks, soft cap, ALiBi, clamp, LoRA,
// scales, other RoPE types) stay on the GEMM path.
bool xq_attn_builder::fits_op(const xq_attn_plan & p, ggml_tensor * kq_b, ggml_tensor * sinks) const {
    const llama_hparams & hparams = g.hparams;
    const bool plain_attention = kq_b == nullptr && sinks == nullptr && !hparams.attn_soft_cap
        && hparams.f_max_alibi_bias == 0.0f && hparams.f_clamp_kqv <= 0.0f && layer.wk_s == nullptr
        && layer.wv_s == nullptr && g.loras->empty() && kq_mask->ne[3] == 1
        && (g.rope_type == LLAMA_ROPE_TYPE_NORM || g.rope_type == LLAMA_ROPE_TYPE_NEOX);
    const auto fits = p.variant == XQ_VARIANT_CROSS_LAYER ? ggml_xq_attn_cross_layer_fits : ggml_xq_attn_fits;
    return plain_attention && fits(p.fused_absorb ? nullptr : p.v_w, layer.wk_b, layer.attn_k_norm, p.rope_factors);
}

// Whether op runs on the device that holds the weights: where it does not, the scheduler
// would run it on the CPU and copy its inputs (a layer's whole X storage) at every step.
bool xq_attn_builder::runs_with_weights(const xq_attn_plan & p, ggml_tensor * op) const {
    ggml_backend_dev_t device = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(p.k_w->buffer));
    return p.weights_on_host || (device != nullptr && ggml_backend_dev_supports_op(device, op));
}

// One input of each kind per cache: the sliding-window layers' cache holds other cells.
ggml_tensor * xq_attn_builder::cell_positions(bool swa_layer) {
    ggml_tensor *& cell_pos = xq.cell_pos[swa_layer];
    if (cell_pos == nullptr) {
        auto pos = std::make_unique<llm_graph_input_xq_pos>(mctx);
        pos->cell_pos = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, n_kv);
        ggml_set_input(pos->cell_pos);
        cell_pos = pos->cell_pos;
        g.res->add_input(std::move(pos));
    }
    return cell_pos;
}

ggml_tensor * xq_attn_builder::token_visibility(bool swa_layer) {
    ggml_tensor *& tokens = xq.visibility[swa_layer];
    if (tokens == nullptr) {
        auto visibility = std::make_unique<llm_graph_input_xq_visibility>(mctx);
        visibility->tokens = ggml_new_tensor_2d(ctx0, GGML_TYPE_I32, 3, g.n_tokens);
        ggml_set_input(visibility->tokens);
        tokens = visibility->tokens;
        g.res->add_input(std::move(visibility));
    }
    return tokens;
}

// gemma3's sliding-window layers have their own RoPE base (as llama_model::get_rope_freq_base)
ggml_xq_attn_rope xq_attn_builder::rope_params(bool swa_layer) const {
    const float base = swa_layer ? g.hparams.rope_freq_base_train_swa : g.freq_base;
    const float scale = swa_layer ? g.hparams.rope_freq_scale_train_swa : g.freq_scale;
    return { (int) g.n_rot, (int) g.rope_type, (int) g.n_ctx_orig, base, scale,
        g.ext_factor, g.attn_factor, g.beta_fast, g.beta_slow };
}

// The store and load are ggml ops (GGML_OP_XQ_SET_ROWS / GGML_OP_XQ_REBUILD), so GPU
// backends can run them. v_idxs is not an operand; as a graph leaf it is still allocated.
xq_stored_rows xq_attn_builder::store(const xq_attn_plan & p, ggml_tensor * v_idxs) {
    xq_stored_rows s;
    switch (p.variant) {
        case XQ_VARIANT_X:
            s.rows = xq.x;
            break;
        case XQ_VARIANT_CROSS_LAYER:
            s.rows = g.res->t_layer_inp[il];
            // the layers so far as a list for the op, or their reconstruction, carried from the
            // previous layer or rebuilt from the list when the layers before took the op
            s.base = !p.delta ? nullptr : p.fused ? xq.layers : xq.acc ? xq.acc : ggml_xq_layers_load(ctx0, xq.layers, n_kv);
            break;
        case XQ_VARIANT_LATENT:
            s.rows = ggml_concat(ctx0, ggml_mul_mat(ctx0, p.factors->whiten_k, g.build_lora_mm(layer.wk, xq.x, layer.wk_s)),
                ggml_mul_mat(ctx0, p.factors->whiten_v, g.build_lora_mm(layer.wv, xq.x, layer.wv_s)), 0);
            break;
        case XQ_VARIANT_LATENT_CL:
            if (p.projected_store) {
                s.rows = xq.x;
                s.base = xq.layers;
                break;
            }
            s.rows = ggml_mul_mat(ctx0, p.factors->project, xq.x);
            if (p.delta && xq.acc == nullptr) {
                xq.acc = ggml_xq_layers_load(ctx0, xq.layers, n_kv);
            }
            s.base = p.delta ? ggml_mul_mat(ctx0, p.factors->project, xq.acc) : nullptr;
            break;
        default:
            GGML_ABORT("unknown XQuant variant");
    }
    GGML_ASSERT(s.rows != nullptr && s.rows->nb[0] == sizeof(float));
    s.width = p.variant == XQ_VARIANT_LATENT_CL ? p.factors->project->ne[1] : s.rows->ne[0];

    ggml_tensor * storage = mctx->get_k(ctx0, il);
    ggml_build_forward_expand(g.gf, v_idxs);
    s.stored = p.projected_store
        ? ggml_xq_set_rows_projected(ctx0, storage, s.rows, k_idxs, s.base, p.factors->project, bits)
        : ggml_xq_set_rows(ctx0, storage, s.rows, k_idxs, s.base, bits);
    g.cb(s.stored, "xq_stored", il);
    return s;
}

ggml_tensor * xq_attn_builder::fused_attention(const xq_attn_plan & p, const xq_stored_rows & s) {
    const llama_hparams & hparams = g.hparams;
    // the op reads the stored rows, or for GQA-CL the layers so far, lifted and summed into X̂
    ggml_tensor * source = s.stored;
    int64_t source_width = s.width;
    if (p.variant == XQ_VARIANT_LATENT_CL) {
        xq.layers = ggml_xq_layers_lifted(ctx0, p.delta ? xq.layers : nullptr, s.stored, p.factors->lift, s.width, bits);
        xq.acc = nullptr;
        source = xq.layers;
        source_width = xq.x->ne[0];
    }
    // On the CPU the op sees the cells through the cache's cell table and the tokens' visibility,
    // so that no n_kv x n_tokens mask is in the compute buffer; the GPU kernels take the mask.
    const bool by_visibility = p.weights_on_host && g.cparams.causal_attn;
    ggml_tensor * cells = by_visibility ? mctx->get_xq_cells(ctx0) : cell_positions(p.swa_layer);
    const ggml_xq_attn_rope rope = rope_params(p.swa_layer);
    // V's source is X itself, or the V latent (the row's second half, after K's)
    ggml_tensor * cur = ggml_xq_attn(ctx0, source, q_cur, p.k_w, p.fused_absorb ? nullptr : p.v_w,
        cells, source_width, bits, kq_scale, &rope);
    if (by_visibility) {
        ggml_xq_attn_set_visibility(cur, token_visibility(p.swa_layer));
    } else {
        ggml_xq_attn_set_mask(cur, kq_mask);
    }
    if (xq_exact_ubatch(g.cparams)) {
        // the ubatch's own cells: X itself (for XQuant-CL, the layer's normed input), or its latent
        ggml_xq_attn_set_exact_rows(cur, p.variant == XQ_VARIANT_LATENT ? s.rows : xq.x, k_idxs);
    }
    if (layer.wk_b) {
        ggml_xq_attn_set_k_bias(cur, layer.wk_b);
    }
    if (layer.attn_k_norm) {
        ggml_xq_attn_set_k_norm(cur, layer.attn_k_norm, hparams.f_norm_rms_eps);
    }
    if (p.rope_factors) {
        ggml_xq_attn_set_rope_factors(cur, p.rope_factors);
    }
    if (p.variant == XQ_VARIANT_CROSS_LAYER) {
        ggml_tensor * earlier = p.delta ? xq.layers : nullptr;
        cur = ggml_xq_attn_cross_layer(cur, earlier, layer.attn_norm, hparams.f_norm_rms_eps);
        xq.layers = ggml_xq_layers(ctx0, earlier, s.stored, s.width, bits);
        xq.acc = nullptr;
    }
    // not on this device: the op stays out of the graph and the GEMM path runs
    return runs_with_weights(p, cur) ? fused_heads(p, cur) : nullptr;
}

// The op's result as the heads' outputs [n_embd_head * n_head, n_tokens].
ggml_tensor * xq_attn_builder::fused_heads(const xq_attn_plan & p, ggml_tensor * cur) const {
    g.cb(cur, "xq_attn", il);
    if (p.fused_absorb) {
        // each head's weighted V source through its kv head's slice of Wv (mul_mat broadcasts
        // a kv head over its group of query heads)
        cur = ggml_mul_mat(ctx0, ggml_reshape_3d(ctx0, p.v_w, p.v_w->ne[0], n_embd_head, n_head_kv), cur);
    }
    if (layer.wv_b) {
        // heads are [group][kv head]; the bias is per kv head (the weights sum to 1)
        cur = ggml_reshape_4d(ctx0, cur, n_embd_head, g.n_tokens, n_head_q / n_head_kv, n_head_kv);
        cur = ggml_add(ctx0, cur, ggml_reshape_4d(ctx0, layer.wv_b, n_embd_head, 1, 1, n_head_kv));
    }
    cur = ggml_permute(ctx0, ggml_reshape_3d(ctx0, cur, n_embd_head, g.n_tokens, n_head_q), 0, 2, 1, 3);
    return ggml_cont_2d(ctx0, cur, n_embd_head * n_head_q, g.n_tokens);
}

// The ubatch's own cells take their unquantized rows (xquant_exact_ubatch): only older
// cells are read back from the cache. ggml_set_rows writes in place, so a tensor that is
// also the cross-layer chain (the base of the next layer's delta) is copied first.
ggml_tensor * xq_attn_builder::exact_ubatch(ggml_tensor * loaded_rows, ggml_tensor * exact_rows) const {
    return xq_exact_ubatch(g.cparams) ? ggml_set_rows(ctx0, loaded_rows, exact_rows, k_idxs) : loaded_rows;
}

// X̂ through the model's own wk and wv, or the latents through the rebuild factors.
// CL adds the base back while dequantizing; LATENT_CL lifts the latent delta into X's space first.
xq_gemm_sources xq_attn_builder::gemm_sources(const xq_attn_plan & p, const xq_stored_rows & s) {
    ggml_tensor * load_base = p.variant == XQ_VARIANT_CROSS_LAYER ? s.base : nullptr;
    ggml_tensor * loaded = ggml_xq_load(ctx0, s.stored, load_base, s.width, n_kv, bits);
    g.cb(loaded, "xq_loaded", il);
    if (p.variant == XQ_VARIANT_LATENT) {
        loaded = exact_ubatch(loaded, s.rows);
        ggml_tensor * k_src = ggml_cont(ctx0, ggml_view_2d(ctx0, loaded, n_embd_kv, n_kv, loaded->nb[1], 0));
        ggml_tensor * v_src = ggml_cont(ctx0, ggml_view_2d(ctx0, loaded, n_embd_kv, n_kv, loaded->nb[1], n_embd_kv * sizeof(float)));
        return { k_src, v_src, p.factors->rebuild_k, p.factors->rebuild_v };
    }
    ggml_tensor * x_hat;
    if (p.variant == XQ_VARIANT_CROSS_LAYER) {
        xq.acc = loaded;
        xq.layers = nullptr;
        x_hat = exact_ubatch(g.build_norm(xq.acc, layer.attn_norm, NULL, LLM_NORM_RMS, il), xq.x);
    } else if (p.variant == XQ_VARIANT_LATENT_CL) {
        ggml_tensor * lifted = ggml_mul_mat(ctx0, p.factors->lift, loaded);
        xq.acc = p.delta ? ggml_add(ctx0, xq.acc, lifted) : lifted;
        xq.layers = nullptr;
        x_hat = xq_exact_ubatch(g.cparams) ? exact_ubatch(ggml_dup(ctx0, xq.acc), xq.x) : xq.acc;
    } else {
        x_hat = exact_ubatch(loaded, xq.x);
    }
    g.cb(x_hat, "xq_x_hat", il);
    return { x_hat, x_hat, layer.wk, layer.wv };
}

// K or V through its projection, then the model's own bias and clamp
ggml_tensor * xq_attn_builder::project(const xq_attn_plan & p, ggml_tensor * w, ggml_tensor * src,
        ggml_tensor * scale, ggml_tensor * bias, const char * name) const {
    ggml_tensor * t = p.variant == XQ_VARIANT_LATENT ? ggml_mul_mat(ctx0, w, src) : g.build_lora_mm(w, src, scale);
    g.cb(t, name, il);
    if (bias) {
        t = ggml_add(ctx0, t, bias);
    }
    if (g.hparams.f_clamp_kqv > 0.0f) {
        t = ggml_clamp(ctx0, t, -g.hparams.f_clamp_kqv, g.hparams.f_clamp_kqv);
    }
    return t;
}

// K: projected, k-norm, then RoPE at each cell's current position
ggml_tensor * xq_attn_builder::rebuilt_k(const xq_attn_plan & p, const xq_gemm_sources & src) {
    ggml_tensor * k = project(p, src.k_w, src.k_src, layer.wk_s, layer.wk_b, "xq_k_rebuild");
    k = ggml_reshape_3d(ctx0, k, n_embd_head, n_head_kv, n_kv);
    if (layer.attn_k_norm) {
        k = g.build_norm(k, layer.attn_k_norm, NULL, LLM_NORM_RMS, il);
    }
    const ggml_xq_attn_rope rope = rope_params(p.swa_layer);
    k = ggml_rope_ext(ctx0, k, cell_positions(p.swa_layer), p.rope_factors, rope.n_rot, rope.mode, rope.n_ctx_orig,
            rope.freq_base, rope.freq_scale, rope.ext_factor, rope.attn_factor, rope.beta_fast, rope.beta_slow);
    g.cb(k, "xq_k", il);
    return k;
}

// V absorption: head h's output is Σ_j a_hj·(Wv,h·v_src_j + bv,h) = Wv,h·(Σ_j a_hj·v_src_j) + bv,h,
// since the weights sum to 1. Attention weights v_src itself as one shared head (MLA-style),
// then each head's result goes through its kv head's slice of Wv (mul_mat broadcasts a kv head
// over its group of query heads, as GQA pairs them). It costs n_head·n_tokens·n_kv·width instead
// of n_kv·width·d_kv, so it pays while n_tokens·n_head < d_kv: decode and small batches.
// Not absorbed: flash attention (its fused kernels want V heads shaped like K's), sinks (the
// weights no longer sum to 1), a V clamp (not linear), LoRA and per-tensor scales on wv.
ggml_tensor * xq_attn_builder::gemm_attention(const xq_attn_plan & p, const xq_stored_rows & s, ggml_tensor * kq_b, ggml_tensor * sinks) {
    const xq_gemm_sources src = gemm_sources(p, s);
    ggml_tensor * k = rebuilt_k(p, src);
    const bool absorb = xq_absorb_v(g.cparams) && !g.cparams.flash_attn && g.n_tokens * n_head_q < n_embd_kv
        && sinks == nullptr && g.hparams.f_clamp_kqv <= 0.0f && layer.wv_s == nullptr && g.loras->empty();
    if (!absorb) {
        ggml_tensor * v = project(p, src.v_w, src.v_src, layer.wv_s, layer.wv_b, "xq_v_rebuild");
        v = ggml_reshape_3d(ctx0, v, n_embd_head, n_head_kv, n_kv);
        g.cb(v, "xq_v", il);
        return g.build_attn_mha(q_cur, k, v, kq_b, kq_mask, sinks, nullptr, 0, kq_scale, il);
    }
    // Attention weights V over the cells, so it wants each channel's values over the cells
    // contiguous (llama.cpp's transposed V layout). For X, the load writes X̂ that way
    // (with the ubatch's exact rows) where it runs with the weights (no GPU kernel has it);
    // otherwise v_src is transposed by a copy.
    ggml_tensor * v_shared = ggml_reshape_3d(ctx0, src.v_src, src.v_src->ne[0], 1, n_kv);
    if (p.variant == XQ_VARIANT_X) {
        const bool exact = xq_exact_ubatch(g.cparams);
        ggml_tensor * x_hat_t = ggml_xq_load_transposed(ctx0, s.stored, exact ? xq.x : nullptr, exact ? k_idxs : nullptr, s.width, n_kv, bits);
        if (runs_with_weights(p, x_hat_t)) {
            v_shared = ggml_view_3d(ctx0, x_hat_t, n_kv, 1, s.width, x_hat_t->nb[1] * s.width, x_hat_t->nb[1], 0);
        }
    }
    ggml_tensor * v_heads = ggml_reshape_3d(ctx0, src.v_w, src.v_w->ne[0], n_embd_head, n_head_kv);
    ggml_tensor * cur = g.build_attn_mha(q_cur, k, v_shared, kq_b, kq_mask, sinks, v_heads, 0, kq_scale, il);
    if (layer.wv_b) {
        // output heads are [group][kv head]; the bias is per kv head
        cur = ggml_reshape_4d(ctx0, cur, n_embd_head, n_head_q / n_head_kv, n_head_kv, g.n_tokens);
        cur = ggml_add(ctx0, cur, ggml_reshape_4d(ctx0, layer.wv_b, n_embd_head, 1, n_head_kv, 1));
        cur = ggml_reshape_2d(ctx0, cur, n_embd_head * n_head_q, g.n_tokens);
    }
    return cur;
}

} // namespace

ggml_tensor * llm_graph_context::build_attn_xq(
        const llama_kv_cache_context * mctx_cur,
        ggml_tensor * k_idxs,
        ggml_tensor * v_idxs,
        ggml_tensor * kq_mask,
        ggml_tensor * wo,
        ggml_tensor * wo_b,
        ggml_tensor * wo_s,
        ggml_tensor * q_cur,
        ggml_tensor * kq_b,
        ggml_tensor * sinks,
            float     kq_scale,
            int       il) const {
    GGML_ASSERT(xq.x != nullptr && xq.layer != nullptr && "build_qkv must run before build_attn in XQuant mode");
    xq_attn_builder builder(*this, mctx_cur, k_idxs, kq_mask, q_cur, kq_scale, il);
    const xq_attn_plan plan = builder.plan(kq_b, sinks);
    const xq_stored_rows stored = builder.store(plan, v_idxs);
    ggml_tensor * cur = plan.fused ? builder.fused_attention(plan, stored) : nullptr;
    if (cur == nullptr) {
        cur = builder.gemm_attention(plan, stored, kq_b, sinks);
    }
    // the heads' outputs through wo
    cb(cur, "kqv_out", il);
    if (wo) {
        cur = build_lora_mm(wo, cur, wo_s);
    }
    if (wo_b) {
        cur = ggml_add(ctx0, cur, wo_b);
    }
    return cur;
}
