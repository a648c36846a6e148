#pragma once

// Cache modes by the names the app and `npm run eval` use:
//   kv-f16 | kv-q8_0 | kv-q4_0           llama.cpp's own KV cache
//   xq-f16 | xq-8 | xq-4 | xq-3 | xq-2   X-cache (xq-f16 stores X unquantized)
//   xqcl-f16 | xqcl-4 | xqcl-3 | xqcl-2  XQuant-CL (cross-layer deltas)
//   xql-f16 | xql-8 | xql-4 | xql-3 | xql-2   GQA latent
//   xqlcl-f16 | xqlcl-4 | xqlcl-3 | xqlcl-2   GQA latent, cross-layer
// An X mode may carry modifiers (any order):
//   +plain             rebuild V instead of absorbing it (LLAMA_XQUANT_PLAIN_V)
//   +quantized-ubatch  the ubatch's own cells come from the cache too (LLAMA_XQUANT_QUANTIZED_UBATCH)
//   +gemm              attention through a rebuilt K of every cell in view, not the fused op (LLAMA_XQUANT_GEMM_ATTN)
//   +fused             GQA-CL through the fused op too (LLAMA_XQUANT_FUSED_GQA_CL)

#include "llama.h"
#include "xquant.h"

#include <cstdlib>
#include <string>

// Sets the cache fields of params for a mode; false for an unknown name.
inline bool xq_apply_mode(const std::string & full_name, int base_layers, llama_context_params & params) {
    std::string name = full_name;
    int32_t options = 0;
    for (const auto & [modifier, bit] : { std::pair<std::string, int32_t>{ "+plain", LLAMA_XQUANT_PLAIN_V }, { "+quantized-ubatch", LLAMA_XQUANT_QUANTIZED_UBATCH }, { "+gemm", LLAMA_XQUANT_GEMM_ATTN }, { "+fused", LLAMA_XQUANT_FUSED_GQA_CL } }) {
        const size_t at = name.find(modifier);
        if (at != std::string::npos) {
            options |= bit;
            name.erase(at, modifier.size());
        }
    }
    if (name == "kv-f16") {
        params.type_k = params.type_v = GGML_TYPE_F16;
        return true;
    }
    if (name == "kv-q8_0" || name == "kv-q4_0") {
        // llama.cpp needs flash attention for a quantized V cache
        params.type_k = params.type_v = name == "kv-q8_0" ? GGML_TYPE_Q8_0 : GGML_TYPE_Q4_0;
        params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
        return true;
    }
    for (const auto & [prefix, variant] : { std::pair<std::string, int>{ "xqlcl-", 3 }, { "xql-", 2 }, { "xqcl-", 1 }, { "xq-", 0 } }) {
        if (name.rfind(prefix, 0) == 0) {
            const std::string bits = name.substr(prefix.size());
            params.xquant_bits = bits == "f16" ? 16 : std::atoi(bits.c_str());
            params.xquant_variant = variant | options;
            params.xquant_base_layers = base_layers;
            return params.xquant_bits > 0;
        }
    }
    return false;
}
