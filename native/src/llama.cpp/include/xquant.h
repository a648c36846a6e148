#pragma once

// Public API of the XQuant patch series. The cache mode itself is chosen with
// llama_context_params.xquant_bits / xquant_base_layers / xquant_base_bits.

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llama_xquant_cache_info {
    int32_t  bits;             // X bits of the non-base layers; 0 for a KV cache
    int32_t  base_bits;        // X bits of the base (leading) layers
    int32_t  base_layers;      // number of leading layers stored at base_bits
    int32_t  variant;          // 0 = X, 1 = cross-layer (XQuant-CL), 2 = GQA latent, 3 = GQA latent cross-layer
    uint64_t bytes;            // cache buffers as allocated (the memory breakdown)
    double   bits_per_element; // bytes * 8 over the cached elements (X, or K and V)
    uint32_t n_cells;          // cells in the cache
    uint32_t n_cells_used;     // cells holding a token
    uint64_t factor_bytes;     // GQA latent factors (per model, not per token)
    double   factor_seconds;   // time spent computing them (0 when read from their file)
    bool     factors_from_disk;
};

LLAMA_API struct llama_xquant_cache_info llama_xquant_get_cache_info(const struct llama_context * ctx);

#ifdef __cplusplus
}
#endif
