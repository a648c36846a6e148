#pragma once

#include "ggml.h"
#include "ggml-cpp.h"

#include <memory>
#include <string>
#include <vector>

struct llama_model;

// The GQA latent factors of XQuant (docs/XQUANT.md §3), per layer, as ggml
// tensors in a CPU buffer. For a projection W (rows = outputs) with thin SVD
// W = P Σ Qᵀ, the latent of X is z = Qᵀ X and W X = (P Σ) z exactly.
//
// - separate (xql-b): the latents come from the model's own K and V, z_k = whiten_k K with
//   whiten_k = Σ_k⁻¹ P_kᵀ (so z_k = Q_kᵀ X), and K = rebuild_k z_k with rebuild_k = P_k Σ_k
//   (d_kv × d_kv each); V alike.
// - joint (xqlcl-b): project = Qᵀ of [W_k; W_v] (2·d_kv × d) and lift = Q
//   (d × 2·d_kv), for cross-layer deltas taken in the latent and lifted back.
struct xq_latent_factors {
    struct layer {
        ggml_tensor * project   = nullptr;
        ggml_tensor * whiten_k  = nullptr;
        ggml_tensor * whiten_v  = nullptr;
        ggml_tensor * rebuild_k = nullptr;
        ggml_tensor * rebuild_v = nullptr;
        ggml_tensor * lift      = nullptr;
    };

    bool joint = false;
    std::vector<layer> layers;
    double seconds = 0.0;    // time to compute the factors (0 when loaded)
    bool from_disk = false;  // read from the factor file instead of computed
    size_t bytes = 0;

    ggml_context_ptr ctx;
    ggml_backend_buffer_ptr buf;
};

// Computes the factors of every layer, or reads them from path when that file
// holds factors for the same shapes; writes them there after computing.
// path may be empty (no file). Computes on n_threads threads. Throws on unusable weights.
std::shared_ptr<xq_latent_factors> xq_latent_factors_load(const llama_model & model, bool joint, const std::string & path, int n_threads);
