#pragma once

// XQuant rebuilds K and V from wk/wv for every cached cell and reads them, through ggml's
// type traits, to compute the GQA latent factors. A CPU extra buffer type (repack, AMX)
// rearranges a weight's blocks for its own kernels, so neither works there (a repacked
// tensor cannot even be read back). wk/wv therefore stay in the CPU device's plain
// buffer, which mmap can also serve; other devices' buffers are left as chosen.

#include "llama-arch.h"

#include "ggml-backend.h"

#include <cstring>

inline ggml_backend_buffer_type_t xq_weight_buft(llm_tensor tensor, const char * suffix, ggml_backend_buffer_type_t buft) {
    const bool is_kv_weight = (tensor == LLM_TENSOR_ATTN_K || tensor == LLM_TENSOR_ATTN_V)
        && suffix != nullptr && std::strcmp(suffix, "weight") == 0;
    ggml_backend_dev_t dev = ggml_backend_buft_get_device(buft);
    if (!is_kv_weight || dev == nullptr || ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_CPU) {
        return buft;
    }
    return ggml_backend_dev_buffer_type(dev);
}
