#include "xquant-quant.h"

// The row format itself lives in ggml (ggml/src/ggml-xquant.cpp) so that the
// CPU, CUDA and Metal kernels of GGML_OP_XQ_SET_ROWS / GGML_OP_XQ_REBUILD and
// this X-cache share one definition.
#include "ggml-xquant.h"

static_assert(XQ_GROUP_MAX == GGML_XQ_GROUP_MAX, "X-cache and ggml group widths differ");

int xq_group_size(int64_t n_embd) {
    return ggml_xq_group_size(n_embd);
}

bool xq_bits_supported(int bits) {
    return ggml_xq_bits_supported(bits);
}

size_t xq_row_bytes(int64_t n_embd, int bits) {
    return ggml_xq_row_bytes(n_embd, bits);
}

void xq_hadamard(float * x, int n) {
    ggml_xq_hadamard(x, n);
}

void xq_quantize_row(const float * src, uint8_t * dst, int64_t n_embd, int bits) {
    ggml_xq_quantize_row(src, dst, n_embd, bits);
}

void xq_dequantize_row(const uint8_t * src, float * dst, int64_t n_embd, int bits) {
    ggml_xq_dequantize_row(src, dst, n_embd, bits);
}
