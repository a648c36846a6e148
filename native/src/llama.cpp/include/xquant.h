#pragma once

// Public API of the XQuant patch series. The cache mode itself is chosen with
// llama_context_params.xquant_bits / xquant_base_layers / xquant_base_bits.

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

// Options in the bits of llama_context_params.xquant_variant above the variant (bits 0-7).
// All default off, so a plain variant number keeps the fast, exact-ubatch, fused defaults.
#define LLAMA_XQUANT_VARIANT_MASK     0xff
#define LLAMA_XQUANT_PLAIN_V          0x100 // rebuild V for every cell instead of absorbing it into the attention output
#define LLAMA_XQUANT_QUANTIZED_UBATCH 0x200 // the ubatch's own K/V come from the cache too, not from its unquantized X
#define LLAMA_XQUANT_GEMM_ATTN        0x400 // attention through a rebuilt K (and V) of every cell in view, not the fused XQ_ATTN op
#define LLAMA_XQUANT_FUSED_GQA_CL     0x800 // GQA-CL through XQ_ATTN too: flat memory, but every layer lifts the deltas of all layers before it

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
    uint64_t compute_bytes;    // the context's compute buffers as reserved (worst-case graph)
};

LLAMA_API struct llama_xquant_cache_info llama_xquant_get_cache_info(const struct llama_context * ctx);

// The model architectures the X-cache modes support, as GGUF names ("llama, qwen2, ..."):
// the one list, which the app reads through the addon.
LLAMA_API const char * llama_xquant_supported_architectures(void);

#ifdef __cplusplus
}
#endif
