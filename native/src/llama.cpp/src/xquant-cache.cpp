#include "xquant-cache.h"
#include "xquant-latent.h"
#include "xquant-options.h"
#include "xquant-quant.h"
#include "xquant.h"

#include "llama-arch.h"
#include "llama-context.h"
#include "llama-cparams.h"
#include "llama-impl.h"
#include "llama-io.h"
#include "llama-model.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>

// "XQC1": marks a saved X-cache state, so that a state saved in another cache
// mode is refused with a clear error instead of being misread.
static constexpr uint32_t XQ_STATE_MAGIC = 0x31435158;

static bool is_latent(int32_t variant) {
    return variant == XQ_VARIANT_LATENT || variant == XQ_VARIANT_LATENT_CL;
}

static bool is_cross_layer(int32_t variant) {
    return variant == XQ_VARIANT_CROSS_LAYER || variant == XQ_VARIANT_LATENT_CL;
}

uint32_t xq_base_layers(const llama_cparams & cparams, uint32_t n_layer) {
    const int32_t requested = cparams.xq_base_layers;
    const uint32_t layers = requested >= 0 ? std::min<uint32_t>(requested, n_layer) : (3 * n_layer) / 32;
    return is_cross_layer(xq_variant_of(cparams)) ? std::max<uint32_t>(layers, 1) : layers;
}

int64_t xq_row_width(const llama_hparams & hparams, int32_t variant, uint32_t il) {
    return is_latent(variant) ? 2 * (int64_t) hparams.n_embd_k_gqa(il) : (int64_t) hparams.n_embd;
}

void xq_init_cparams(llama_cparams & cparams, const llama_context_params & params, const llama_model & model) {
    cparams.xq_bits = params.xquant_bits;
    cparams.xq_base_layers = params.xquant_base_layers;
    cparams.xq_base_bits = params.xquant_base_bits;
    cparams.xq_variant = params.xquant_variant;
    if (cparams.xq_bits != 0) {
        cparams.kv_unified = true;
        cparams.xq_base_layers_resolved = xq_base_layers(cparams, model.hparams.n_layer());
        if (is_latent(xq_variant_of(cparams))) {
            cparams.xq_factors = xq_latent_factors_load(model, xq_variant_of(cparams) == XQ_VARIANT_LATENT_CL,
                    params.xquant_factors_path ? params.xquant_factors_path : "", params.n_threads_batch);
        }
    }
}

int xq_layer_bits(const llama_cparams & cparams, uint32_t il) {
    // the base layers never store fewer bits than the rest
    const bool base = il < cparams.xq_base_layers_resolved && cparams.xq_base_bits > cparams.xq_bits;
    return base ? cparams.xq_base_bits : cparams.xq_bits;
}

// the architectures whose graphs call build_attn_xq
static constexpr llm_arch xq_architectures[] = { LLM_ARCH_LLAMA, LLM_ARCH_QWEN2, LLM_ARCH_QWEN3, LLM_ARCH_GEMMA3 };

const char * llama_xquant_supported_architectures(void) {
    static const std::string names = [] {
        std::string joined;
        for (const llm_arch arch : xq_architectures) {
            joined += (joined.empty() ? "" : ", ") + std::string(llm_arch_name(arch));
        }
        return joined;
    }();
    return names.c_str();
}

static void check_supported(const llama_model & model, const llama_cparams & cparams) {
    const auto & hparams = model.hparams;
    const std::string arch = llm_arch_name(model.arch);
    if (std::find(std::begin(xq_architectures), std::end(xq_architectures), model.arch) == std::end(xq_architectures)) {
        throw std::runtime_error("XQuant cache modes do not support the '" + arch + "' architecture (supported: "
            + llama_xquant_supported_architectures() + ")");
    }
    // gemma3's standard sliding window is the only one whose graph build_attn_xq follows
    const bool sliding_window_ok = hparams.swa_type == LLAMA_SWA_TYPE_NONE
        || (model.arch == LLM_ARCH_GEMMA3 && hparams.swa_type == LLAMA_SWA_TYPE_STANDARD);
    if (hparams.use_kq_norm || !sliding_window_ok || hparams.n_pos_per_embd() > 1) {
        throw std::runtime_error("XQuant cache modes do not support this '" + arch + "' variant (kq-norm, sliding-window or multi-position RoPE)");
    }
    if (hparams.swa_type != LLAMA_SWA_TYPE_NONE && is_cross_layer(xq_variant_of(cparams))) {
        throw std::runtime_error("XQuant-CL modes (xqcl, xqlcl) chain each layer's cells to the previous layer's, but this '" + arch
            + "' model's sliding-window layers keep fewer cells than its global layers; use an X or latent mode (xq, xql)");
    }
    for (uint32_t il = 0; il < hparams.n_layer(); ++il) {
        const auto & layer = model.layers[il];
        if (layer.wqkv != nullptr || layer.wk == nullptr || layer.wv == nullptr) {
            throw std::runtime_error("XQuant cache modes need separate wk/wv tensors; this '" + arch + "' model has a fused QKV projection");
        }
    }
    if (xq_group_size(xq_row_width(hparams, xq_variant_of(cparams), 0)) == 0) {
        throw std::runtime_error("XQuant cache modes need rows of a multiple of 32 values; this model's are " + std::to_string(xq_row_width(hparams, xq_variant_of(cparams), 0)));
    }
    if (xq_variant_of(cparams) < XQ_VARIANT_X || xq_variant_of(cparams) > XQ_VARIANT_LATENT_CL) {
        throw std::runtime_error("unknown XQuant variant " + std::to_string(xq_variant_of(cparams)));
    }
    if (!xq_bits_supported(cparams.xq_bits) || !xq_bits_supported(cparams.xq_base_bits)) {
        throw std::runtime_error("XQuant supports 2, 3, 4, 8 or 16 bits, not " + std::to_string(cparams.xq_bits) + "/" + std::to_string(cparams.xq_base_bits));
    }
}

llama_memory_i * llama_xq_cache_create(const llama_model & model, const llama_cparams & cparams, bool swa_full, bool offload) {
    check_supported(model, cparams);
    return new llama_xq_cache(model, cparams, swa_full, offload);
}

llama_xq_cache::llama_xq_cache(const llama_model & model, const llama_cparams & cparams, bool swa_full, bool offload) :
    xhparams(model.hparams), variant(xq_variant_of(cparams)), base_layers(cparams.xq_base_layers_resolved) {
    const uint32_t n_layer = model.hparams.n_layer();
    // each stored row is xq_row_bytes bytes, laid out as row_bytes/4 "heads" of 4 I8 elements;
    // with the MLA flag set the inner cache allocates no V, and with no RoPE it never re-rotates on a shift
    xhparams.n_embd_head_k_full = 4;
    xhparams.n_embd_head_v_full = 4;
    xhparams.n_embd_head_k_swa = 4;
    xhparams.n_embd_head_v_swa = 4;
    xhparams.n_embd_head_k_mla_impl = 4;
    xhparams.n_embd_head_v_mla_impl = 4;
    xhparams.rope_type = LLAMA_ROPE_TYPE_NONE;
    for (uint32_t il = 0; il < n_layer; ++il) {
        const int bits = xq_layer_bits(cparams, il);
        layer_bits.push_back(bits);
        xhparams.n_head_kv_arr[il] = (uint32_t) (xq_row_bytes(xq_row_width(model.hparams, variant, il), bits) / 4);
    }

    LLAMA_LOG_INFO("%s: X-cache (variant %d), %u cells, %d bits (%u base layers at %d bits)\n", __func__,
            variant, cparams.n_ctx_seq, cparams.xq_bits, cparams.xq_base_layers_resolved, cparams.xq_base_bits);

    const auto model_layers = [n_layer](int32_t il) { return (uint32_t) il < n_layer; };
    if (model.hparams.swa_type == LLAMA_SWA_TYPE_NONE) {
        inner = std::make_unique<llama_kv_cache>(
                model, xhparams, GGML_TYPE_I8, GGML_TYPE_I8,
                /*v_trans*/ false, offload, /*unified*/ true, cparams.n_ctx_seq, cparams.n_seq_max,
                /*n_pad*/ 1, /*n_swa*/ 0, LLAMA_SWA_TYPE_NONE, nullptr, model_layers, nullptr, nullptr, "xq_");
    } else {
        inner = std::make_unique<llama_kv_cache_iswa>(
                model, xhparams, GGML_TYPE_I8, GGML_TYPE_I8,
                /*v_trans*/ false, offload, swa_full, /*unified*/ true, cparams.n_ctx_seq, cparams.n_seq_max,
                cparams.n_ubatch, /*n_pad*/ 1, nullptr, model_layers, nullptr, nullptr);
    }
}

const llama_kv_cache & llama_xq_cache::get_base() const {
    const auto * iswa = dynamic_cast<const llama_kv_cache_iswa *>(inner.get());
    return iswa ? *iswa->get_base() : static_cast<const llama_kv_cache &>(*inner);
}

const llama_kv_cache * llama_xq_cache::get_swa() const {
    const auto * iswa = dynamic_cast<const llama_kv_cache_iswa *>(inner.get());
    return iswa ? iswa->get_swa() : nullptr;
}

llama_memory_context_ptr llama_xq_cache::init_batch(llama_batch_allocr & balloc, uint32_t n_ubatch, bool embd_all) {
    return inner->init_batch(balloc, n_ubatch, embd_all);
}

llama_memory_context_ptr llama_xq_cache::init_full() {
    return inner->init_full();
}

llama_memory_context_ptr llama_xq_cache::init_update(llama_context * lctx, bool optimize) {
    return inner->init_update(lctx, optimize);
}

bool llama_xq_cache::get_can_shift() const {
    return true;
}

void llama_xq_cache::clear(bool data) {
    inner->clear(data);
}

bool llama_xq_cache::seq_rm(llama_seq_id seq_id, llama_pos p0, llama_pos p1) {
    return inner->seq_rm(seq_id, p0, p1);
}

void llama_xq_cache::seq_cp(llama_seq_id seq_id_src, llama_seq_id seq_id_dst, llama_pos p0, llama_pos p1) {
    inner->seq_cp(seq_id_src, seq_id_dst, p0, p1);
}

void llama_xq_cache::seq_keep(llama_seq_id seq_id) {
    inner->seq_keep(seq_id);
}

void llama_xq_cache::seq_add(llama_seq_id seq_id, llama_pos p0, llama_pos p1, llama_pos shift) {
    inner->seq_add(seq_id, p0, p1, shift);
}

void llama_xq_cache::seq_div(llama_seq_id seq_id, llama_pos p0, llama_pos p1, int d) {
    inner->seq_div(seq_id, p0, p1, d);
}

llama_pos llama_xq_cache::seq_pos_min(llama_seq_id seq_id) const {
    return inner->seq_pos_min(seq_id);
}

llama_pos llama_xq_cache::seq_pos_max(llama_seq_id seq_id) const {
    return inner->seq_pos_max(seq_id);
}

std::map<ggml_backend_buffer_type_t, size_t> llama_xq_cache::memory_breakdown() const {
    return inner->memory_breakdown();
}

void llama_xq_cache::state_write(llama_io_write_i & io, llama_seq_id seq_id, llama_state_seq_flags flags) const {
    const uint32_t n_layer = layer_bits.size();
    io.write(&XQ_STATE_MAGIC, sizeof(XQ_STATE_MAGIC));
    io.write(&variant, sizeof(variant));
    io.write(&n_layer, sizeof(n_layer));
    io.write(layer_bits.data(), n_layer * sizeof(int32_t));
    inner->state_write(io, seq_id, flags);
}

void llama_xq_cache::state_read(llama_io_read_i & io, llama_seq_id seq_id, llama_state_seq_flags flags) {
    uint32_t magic = 0;
    io.read(&magic, sizeof(magic));
    if (magic != XQ_STATE_MAGIC) {
        throw std::runtime_error("this state was not saved by an XQuant context; load it into a context with the cache mode it was saved in");
    }
    int32_t saved_variant = -1;
    io.read(&saved_variant, sizeof(saved_variant));
    if (saved_variant != variant) {
        throw std::runtime_error("this state was saved in another XQuant cache mode (variant " + std::to_string(saved_variant) + ", this context uses " + std::to_string(variant) + ")");
    }
    uint32_t n_layer = 0;
    io.read(&n_layer, sizeof(n_layer));
    std::vector<int32_t> saved_bits(n_layer);
    if (n_layer != layer_bits.size()) {
        throw std::runtime_error("this XQuant state has " + std::to_string(n_layer) + " layers; the model has " + std::to_string(layer_bits.size()));
    }
    io.read(saved_bits.data(), n_layer * sizeof(int32_t));
    if (saved_bits != layer_bits) {
        throw std::runtime_error("this state was saved in another XQuant cache mode (different bits per layer); load it into a context with the same mode");
    }
    inner->state_read(io, seq_id, flags);
}

llama_xquant_cache_info llama_xquant_get_cache_info(const llama_context * ctx) {
    llama_xquant_cache_info info = {};
    llama_memory_t memory = llama_get_memory(ctx);
    if (memory == nullptr) {
        return info;
    }
    for (const auto & [buft, bytes] : memory->memory_breakdown()) {
        info.bytes += bytes;
    }
    for (const auto & [buft, data] : ctx->memory_breakdown()) {
        info.compute_bytes += data.compute;
    }
    const llama_model & model = *llama_get_model(ctx);
    const auto & hparams = model.hparams;
    // the caches of the global and of the sliding-window layers (the latter only with SWA)
    const llama_kv_cache * base = nullptr;
    const llama_kv_cache * swa = nullptr;
    if (auto * xq = dynamic_cast<const llama_xq_cache *>(memory)) {
        base = &xq->get_base();
        swa = xq->get_swa();
        info.bits = xq->get_layer_bits().back();
        info.variant = xq->get_variant();
        info.base_bits = xq->get_layer_bits().front();
        info.base_layers = xq->get_base_layers();
        const auto & factors = ctx->get_cparams().xq_factors;
        if (factors) {
            info.factor_bytes = factors->bytes;
            info.factor_seconds = factors->seconds;
            info.factors_from_disk = factors->from_disk;
        }
    } else if (auto * iswa = dynamic_cast<const llama_kv_cache_iswa *>(memory)) {
        base = iswa->get_base();
        swa = iswa->get_swa();
    } else {
        base = dynamic_cast<const llama_kv_cache *>(memory);
    }
    if (base != nullptr) {
        const bool xq = info.bits != 0;
        uint64_t stored_elements = 0;
        for (uint32_t il = 0; il < hparams.n_layer(); ++il) {
            const int64_t width = xq ? xq_row_width(hparams, info.variant, il) : hparams.n_embd_k_gqa(il) + hparams.n_embd_v_gqa(il);
            const llama_kv_cache & layer_cache = swa != nullptr && hparams.is_swa(il) ? *swa : *base;
            stored_elements += (uint64_t) width * layer_cache.get_cells(0).size();
        }
        const auto & cells = base->get_cells(0);
        info.n_cells = cells.size();
        info.n_cells_used = cells.get_used();
        info.bits_per_element = stored_elements > 0 ? 8.0 * info.bytes / (double) stored_elements : 0.0;
    }
    return info;
}
