#pragma once

// The XQuant options that ride in the high bits of cparams.xq_variant (see
// LLAMA_XQUANT_* in xquant.h): they need no new llama_context_params field.
#include "llama-cparams.h"
#include "xquant.h"

inline int32_t xq_variant_of(const llama_cparams & cparams) {
    return cparams.xq_variant & LLAMA_XQUANT_VARIANT_MASK;
}

// decode weights X̂ by attention and projects once through Wv instead of rebuilding V
inline bool xq_absorb_v(const llama_cparams & cparams) {
    return (cparams.xq_variant & LLAMA_XQUANT_PLAIN_V) == 0;
}

// the ubatch's own K/V come from its unquantized X; only older cells are rebuilt from the cache
inline bool xq_exact_ubatch(const llama_cparams & cparams) {
    return (cparams.xq_variant & LLAMA_XQUANT_QUANTIZED_UBATCH) == 0;
}

// attention runs as one fused op over the cache (XQ_ATTN) where the graph allows it
inline bool xq_fused_attn(const llama_cparams & cparams) {
    return (cparams.xq_variant & LLAMA_XQUANT_GEMM_ATTN) == 0;
}

// GQA-CL takes the fused op only when asked: its per-cell sum lifts every earlier layer's
// delta (a GEMM each), where the GEMM path carries one accumulator from layer to layer
inline bool xq_fused_gqa_cl(const llama_cparams & cparams) {
    return (cparams.xq_variant & LLAMA_XQUANT_FUSED_GQA_CL) != 0;
}
