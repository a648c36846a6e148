// XQuant attention: store this ubatch's rows in the X-cache (X, cross-layer
// residual deltas, or GQA latents, by variant), rebuild K of every cell in view
// from the stored rows (the ubatch's own cells from its unquantized rows), and
// run llama.cpp's own attention, either on a rebuilt V or with V absorbed.
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
    GGML_ASSERT(xq_x != nullptr && xq_layer != nullptr && "build_qkv must run before build_attn in XQuant mode");
    const llama_layer & layer = *xq_layer;
    const int bits = xq_layer_bits(cparams, il);
    const int64_t n_embd_head = hparams.n_embd_head_k(il);
    const int64_t n_head_kv = hparams.n_head_kv(il);
    const int64_t n_embd_kv = n_embd_head * n_head_kv;
    const int64_t n_kv = mctx_cur->get_n_kv();
    const int32_t variant = xq_variant_of(cparams);
    const bool delta = (uint32_t) il >= cparams.xq_base_layers_resolved;

    // one input of each kind per cache: the sliding-window layers' cache holds other cells
    const bool swa_layer = hparams.is_swa(il);
    const auto cell_positions = [&]() {
        ggml_tensor *& cell_pos = xq_pos[swa_layer];
        if (cell_pos == nullptr) {
            auto pos = std::make_unique<llm_graph_input_xq_pos>(mctx_cur);
            pos->cell_pos = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, n_kv);
            ggml_set_input(pos->cell_pos);
            cell_pos = pos->cell_pos;
            res->add_input(std::move(pos));
        }
        return cell_pos;
    };
    const auto token_visibility = [&]() {
        ggml_tensor *& tokens = xq_tokens[swa_layer];
        if (tokens == nullptr) {
            auto visibility = std::make_unique<llm_graph_input_xq_visibility>(mctx_cur);
            visibility->tokens = ggml_new_tensor_2d(ctx0, GGML_TYPE_I32, 3, n_tokens);
            ggml_set_input(visibility->tokens);
            tokens = visibility->tokens;
            res->add_input(std::move(visibility));
        }
        return tokens;
    };

    // What a cell stores, and what it is a delta against (stored = rows - base):
    //  X:          X
    //  CL:         the residual stream entering the layer; after the base layers,
    //              a delta against the previous layer's reconstruction (error feedback)
    //  LATENT:     [Q_kᵀ X; Q_vᵀ X], the coordinates of X in Wk's and Wv's row spaces
    //  LATENT_CL:  Qᵀ X in the joint [Wk; Wv] row space; after the base layers, a
    //              delta against the previous layer's reconstruction in that space
    const xq_latent_factors::layer * factors = cparams.xq_factors ? &cparams.xq_factors->layers[il] : nullptr;
    const int64_t n_head_q = hparams.n_head(il);
    ggml_tensor * rope_factors = layer.rope_freqs ? layer.rope_freqs
        : cparams.n_ctx_seq > hparams.n_ctx_orig_yarn ? layer.rope_long : layer.rope_short;

    // The fused op (XQ_ATTN) rebuilds K (and V unless absorbed) block by block inside the
    // attention, so no tensor grows with the context. It covers X and the GQA latent on weights
    // in host memory (the CPU kernel) or on a device whose backend runs the op (the CUDA and
    // Metal kernels: f32/f16 weights), and XQuant-CL (and, when asked, GQA-CL) on host weights.
    // These sum each cell's deltas of every layer so far inside the op (ggml_xq_layers; GQA-CL
    // lifts each through its layer's factor, ggml_xq_layers_lifted), so they take the op only
    // while the layers before them did. The rest of llama.cpp's attention features (KQ bias, sinks, soft
    // cap, ALiBi, clamp, LoRA, scales) stay on the path below.
    const bool cross_layer = variant == XQ_VARIANT_CROSS_LAYER;
    const bool latent_cl = variant == XQ_VARIANT_LATENT_CL;
    ggml_tensor * fused_k_w = variant == XQ_VARIANT_LATENT ? (factors ? factors->rebuild_k : nullptr) : layer.wk;
    ggml_tensor * fused_v_w = variant == XQ_VARIANT_LATENT ? (factors ? factors->rebuild_v : nullptr) : layer.wv;
    const bool fused_absorb = xq_absorb_v(cparams) && n_tokens * n_head_q < n_embd_kv;
    const bool weights_on_host = ggml_backend_buffer_is_host(fused_k_w->buffer) && ggml_backend_buffer_is_host(fused_v_w->buffer);
    // whether op runs on the device that holds the weights: where it does not, the scheduler
    // would run it on the CPU and copy its inputs (a layer's whole X storage) at every step
    const auto runs_with_weights = [&](ggml_tensor * op) {
        ggml_backend_dev_t device = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(fused_k_w->buffer));
        return weights_on_host || (device != nullptr && ggml_backend_dev_supports_op(device, op));
    };
    const bool fused_variant = variant == XQ_VARIANT_X || variant == XQ_VARIANT_LATENT
        || (cross_layer && weights_on_host && (!delta || xq_layers != nullptr) && layer.attn_norm != nullptr
            && layer.attn_norm->type == GGML_TYPE_F32 && ggml_backend_buffer_is_host(layer.attn_norm->buffer))
        || (latent_cl && xq_fused_gqa_cl(cparams) && weights_on_host && (!delta || xq_layers != nullptr));
    // whether to build the op; off the host it is used where the weights' device runs it
    const bool fused = xq_fused_attn(cparams) && fused_variant
        && kq_b == nullptr && sinks == nullptr && !hparams.attn_soft_cap && hparams.f_max_alibi_bias == 0.0f
        && hparams.f_clamp_kqv <= 0.0f && layer.wk_s == nullptr && layer.wv_s == nullptr && loras->empty()
        && (rope_type == LLAMA_ROPE_TYPE_NORM || rope_type == LLAMA_ROPE_TYPE_NEOX) && kq_mask->ne[3] == 1
        && (cross_layer ? ggml_xq_attn_cross_layer_fits : ggml_xq_attn_fits)(fused_absorb ? nullptr : fused_v_w, layer.wk_b, layer.attn_k_norm, rope_factors);

    // GQA-CL through the op stores project * (X - the earlier layers' lifted sum)
    const bool projected_store = latent_cl && fused && delta;
    ggml_tensor * rows = nullptr;
    ggml_tensor * base = nullptr;
    switch (variant) {
        case XQ_VARIANT_X:
            rows = xq_x;
            break;
        case XQ_VARIANT_CROSS_LAYER:
            rows = res->t_layer_inp[il];
            // the layers so far as a list for the op, or their reconstruction, carried from the
            // previous layer or rebuilt from the list when the layers before took the op
            base = !delta ? nullptr : fused ? xq_layers : xq_acc ? xq_acc : ggml_xq_layers_load(ctx0, xq_layers, n_kv);
            break;
        case XQ_VARIANT_LATENT:
            rows = ggml_mul_mat(ctx0, factors->project, xq_x);
            break;
        case XQ_VARIANT_LATENT_CL:
            if (projected_store) {
                rows = xq_x;
                base = xq_layers;
                break;
            }
            rows = ggml_mul_mat(ctx0, factors->project, xq_x);
            if (delta && xq_acc == nullptr) {
                xq_acc = ggml_xq_layers_load(ctx0, xq_layers, n_kv);
            }
            base = delta ? ggml_mul_mat(ctx0, factors->project, xq_acc) : nullptr;
            break;
        default:
            GGML_ABORT("unknown XQuant variant");
    }
    GGML_ASSERT(rows != nullptr && rows->nb[0] == sizeof(float));
    // the stored rows' channels
    const int64_t width = latent_cl ? factors->project->ne[1] : rows->ne[0];

    // The store and load are ggml ops (GGML_OP_XQ_SET_ROWS / GGML_OP_XQ_REBUILD), so GPU
    // backends can run them. v_idxs is not an operand; as a graph leaf it is still allocated.
    ggml_tensor * storage = mctx_cur->get_k(ctx0, il);
    ggml_build_forward_expand(gf, v_idxs);
    ggml_tensor * stored = projected_store
        ? ggml_xq_set_rows_projected(ctx0, storage, rows, k_idxs, base, factors->project, bits)
        : ggml_xq_set_rows(ctx0, storage, rows, k_idxs, base, bits);
    cb(stored, "xq_stored", il);

    // the heads' outputs through wo
    auto attn_output = [&](ggml_tensor * cur) {
        cb(cur, "kqv_out", il);
        if (wo) {
            cur = build_lora_mm(wo, cur, wo_s);
        }
        if (wo_b) {
            cur = ggml_add(ctx0, cur, wo_b);
        }
        return cur;
    };

    // gemma3's sliding-window layers have their own RoPE base (as llama_model::get_rope_freq_base)
    const float rope_base = swa_layer ? hparams.rope_freq_base_train_swa : freq_base;
    const float rope_scale = swa_layer ? hparams.rope_freq_scale_train_swa : freq_scale;

    // the op's result as the heads' outputs [n_embd_head * n_head, n_tokens]
    auto xq_attn_heads = [&](ggml_tensor * cur) {
        cb(cur, "xq_attn", il);
        if (fused_absorb) {
            // each head's weighted V source through its kv head's slice of Wv (mul_mat broadcasts
            // a kv head over its group of query heads)
            cur = ggml_mul_mat(ctx0, ggml_reshape_3d(ctx0, fused_v_w, fused_v_w->ne[0], n_embd_head, n_head_kv), cur);
        }
        if (layer.wv_b) {
            // heads are [group][kv head]; the bias is per kv head (the weights sum to 1)
            cur = ggml_reshape_4d(ctx0, cur, n_embd_head, n_tokens, n_head_q / n_head_kv, n_head_kv);
            cur = ggml_add(ctx0, cur, ggml_reshape_4d(ctx0, layer.wv_b, n_embd_head, 1, 1, n_head_kv));
        }
        cur = ggml_permute(ctx0, ggml_reshape_3d(ctx0, cur, n_embd_head, n_tokens, n_head_q), 0, 2, 1, 3);
        return ggml_cont_2d(ctx0, cur, n_embd_head * n_head_q, n_tokens);
    };
    if (fused) {
        const ggml_xq_attn_rope rope = { (int) n_rot, (int) rope_type, (int) n_ctx_orig, rope_base, rope_scale,
            ext_factor, attn_factor, beta_fast, beta_slow };
        // the ubatch's own cells: X itself (for XQuant-CL, the layer's normed input), or its latent
        ggml_tensor * exact_rows = xq_exact_ubatch(cparams) ? (variant == XQ_VARIANT_LATENT ? rows : xq_x) : nullptr;
        // the op reads the stored rows, or for GQA-CL the layers so far, lifted and summed into X̂
        ggml_tensor * source = stored;
        int64_t source_width = width;
        if (latent_cl) {
            xq_layers = ggml_xq_layers_lifted(ctx0, delta ? xq_layers : nullptr, stored, factors->lift, width, bits);
            xq_acc = nullptr;
            source = xq_layers;
            source_width = xq_x->ne[0];
        }
        // V's source is X itself, or the V latent (the row's second half)
        const int64_t v_width = variant == XQ_VARIANT_LATENT ? n_embd_kv : source_width;
        // On the CPU the op sees the cells through the cache's cell table and the tokens' visibility,
        // so that no n_kv x n_tokens mask is in the compute buffer; the GPU kernels take the mask.
        const bool by_visibility = weights_on_host && cparams.causal_attn;
        ggml_tensor * cells = by_visibility ? mctx_cur->get_xq_cells(ctx0) : cell_positions();
        ggml_tensor * cur = ggml_xq_attn(ctx0, source, q_cur, fused_k_w, fused_absorb ? nullptr : fused_v_w,
            layer.wk_b, layer.attn_k_norm, rope_factors, cells, by_visibility ? token_visibility() : kq_mask,
            exact_rows, exact_rows ? k_idxs : nullptr,
            source_width, v_width, bits, kq_scale, hparams.f_norm_rms_eps, &rope);
        if (cross_layer) {
            ggml_tensor * earlier = delta ? xq_layers : nullptr;
            cur = ggml_xq_attn_cross_layer(cur, earlier, layer.attn_norm, hparams.f_norm_rms_eps);
            xq_layers = ggml_xq_layers(ctx0, earlier, stored, width, bits);
            xq_acc = nullptr;
        }
        if (runs_with_weights(cur)) {
            return attn_output(xq_attn_heads(cur));
        }
        // not on this device: the op stays out of the graph and the GEMM path runs
    }

    // CL adds the base back while dequantizing; LATENT_CL lifts the latent delta into X's space first
    ggml_tensor * load_base = variant == XQ_VARIANT_CROSS_LAYER ? base : nullptr;
    ggml_tensor * loaded = ggml_xq_load(ctx0, stored, load_base, width, n_kv, bits);
    cb(loaded, "xq_loaded", il);

    // The ubatch's own cells take their unquantized rows (xquant_exact_ubatch): only older
    // cells are read back from the cache. ggml_set_rows writes in place, so a tensor that is
    // also the cross-layer chain (the base of the next layer's delta) is copied first.
    auto exact_ubatch = [&](ggml_tensor * loaded_rows, ggml_tensor * exact_rows) {
        return xq_exact_ubatch(cparams) ? ggml_set_rows(ctx0, loaded_rows, exact_rows, k_idxs) : loaded_rows;
    };

    // K comes from k_src through k_w; V from v_src through v_w: X̂ through the model's own
    // wk/wv, or the latents through the rebuild factors
    ggml_tensor * k_src;
    ggml_tensor * v_src;
    ggml_tensor * k_w;
    ggml_tensor * v_w;
    if (variant == XQ_VARIANT_LATENT) {
        loaded = exact_ubatch(loaded, rows);
        k_src = ggml_cont(ctx0, ggml_view_2d(ctx0, loaded, n_embd_kv, n_kv, loaded->nb[1], 0));
        v_src = ggml_cont(ctx0, ggml_view_2d(ctx0, loaded, n_embd_kv, n_kv, loaded->nb[1], n_embd_kv * sizeof(float)));
        k_w = factors->rebuild_k;
        v_w = factors->rebuild_v;
    } else {
        ggml_tensor * x_hat;
        if (variant == XQ_VARIANT_CROSS_LAYER) {
            xq_acc = loaded;
            xq_layers = nullptr;
            x_hat = exact_ubatch(build_norm(xq_acc, layer.attn_norm, NULL, LLM_NORM_RMS, il), xq_x);
        } else if (variant == XQ_VARIANT_LATENT_CL) {
            ggml_tensor * lifted = ggml_mul_mat(ctx0, factors->lift, loaded);
            xq_acc = delta ? ggml_add(ctx0, xq_acc, lifted) : lifted;
            xq_layers = nullptr;
            x_hat = xq_exact_ubatch(cparams) ? exact_ubatch(ggml_dup(ctx0, xq_acc), xq_x) : xq_acc;
        } else {
            x_hat = exact_ubatch(loaded, xq_x);
        }
        cb(x_hat, "xq_x_hat", il);
        k_src = v_src = x_hat;
        k_w = layer.wk;
        v_w = layer.wv;
    }
    // K or V through its projection, then the model's own bias and clamp
    auto project = [&](ggml_tensor * w, ggml_tensor * src, ggml_tensor * scale, ggml_tensor * bias, const char * name) {
        ggml_tensor * t = variant == XQ_VARIANT_LATENT ? ggml_mul_mat(ctx0, w, src) : build_lora_mm(w, src, scale);
        cb(t, name, il);
        if (bias) {
            t = ggml_add(ctx0, t, bias);
        }
        if (hparams.f_clamp_kqv > 0.0f) {
            t = ggml_clamp(ctx0, t, -hparams.f_clamp_kqv, hparams.f_clamp_kqv);
        }
        return t;
    };

    // K: projected, k-norm, then RoPE at each cell's current position
    ggml_tensor * k = project(k_w, k_src, layer.wk_s, layer.wk_b, "xq_k_rebuild");
    k = ggml_reshape_3d(ctx0, k, n_embd_head, n_head_kv, n_kv);
    if (layer.attn_k_norm) {
        k = build_norm(k, layer.attn_k_norm, NULL, LLM_NORM_RMS, il);
    }
    k = ggml_rope_ext(ctx0, k, cell_positions(), rope_factors,
            n_rot, rope_type, n_ctx_orig, rope_base, rope_scale,
            ext_factor, attn_factor, beta_fast, beta_slow);
    cb(k, "xq_k", il);

    // V absorption: head h's output is Σ_j a_hj·(Wv,h·v_src_j + bv,h) = Wv,h·(Σ_j a_hj·v_src_j) + bv,h,
    // since the weights sum to 1. Attention weights v_src itself as one shared head (MLA-style),
    // then each head's result goes through its kv head's slice of Wv (mul_mat broadcasts a kv head
    // over its group of query heads, as GQA pairs them). It costs n_head·n_tokens·n_kv·width instead
    // of n_kv·width·d_kv, so it pays while n_tokens·n_head < d_kv: decode and small batches.
    // Not absorbed: flash attention (its fused kernels want V heads shaped like K's), sinks (the
    // weights no longer sum to 1), a V clamp (not linear), LoRA and per-tensor scales on wv.
    const bool absorb = xq_absorb_v(cparams) && !cparams.flash_attn && n_tokens * n_head_q < n_embd_kv
        && sinks == nullptr && hparams.f_clamp_kqv <= 0.0f && layer.wv_s == nullptr && loras->empty();
    ggml_tensor * cur;
    if (absorb) {
        // Attention weights V over the cells, so it wants each channel's values over the cells
        // contiguous (llama.cpp's transposed V layout). For X, the load writes X̂ that way
        // (with the ubatch's exact rows) where it runs with the weights (no GPU kernel has it);
        // otherwise v_src is transposed by a copy.
        ggml_tensor * v_shared = ggml_reshape_3d(ctx0, v_src, v_src->ne[0], 1, n_kv);
        if (variant == XQ_VARIANT_X) {
            const bool exact = xq_exact_ubatch(cparams);
            ggml_tensor * x_hat_t = ggml_xq_load_transposed(ctx0, stored, exact ? xq_x : nullptr, exact ? k_idxs : nullptr, width, n_kv, bits);
            if (runs_with_weights(x_hat_t)) {
                v_shared = ggml_view_3d(ctx0, x_hat_t, n_kv, 1, width, x_hat_t->nb[1] * width, x_hat_t->nb[1], 0);
            }
        }
        ggml_tensor * v_heads = ggml_reshape_3d(ctx0, v_w, v_w->ne[0], n_embd_head, n_head_kv);
        cur = build_attn_mha(q_cur, k, v_shared, kq_b, kq_mask, sinks, v_heads, 0, kq_scale, il);
        if (layer.wv_b) {
            // output heads are [group][kv head]; the bias is per kv head
            cur = ggml_reshape_4d(ctx0, cur, n_embd_head, n_head_q / n_head_kv, n_head_kv, n_tokens);
            cur = ggml_add(ctx0, cur, ggml_reshape_4d(ctx0, layer.wv_b, n_embd_head, 1, n_head_kv, 1));
            cur = ggml_reshape_2d(ctx0, cur, n_embd_head * n_head_q, n_tokens);
        }
    } else {
        ggml_tensor * v = project(v_w, v_src, layer.wv_s, layer.wv_b, "xq_v_rebuild");
        v = ggml_reshape_3d(ctx0, v, n_embd_head, n_head_kv, n_kv);
        cb(v, "xq_v", il);
        cur = build_attn_mha(q_cur, k, v, kq_b, kq_mask, sinks, nullptr, 0, kq_scale, il);
    }
    return attn_output(cur);
}
