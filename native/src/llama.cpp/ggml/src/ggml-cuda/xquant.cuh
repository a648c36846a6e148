#pragma once

// CUDA kernels of the XQuant ops (ggml-xquant.h): GGML_OP_XQ_SET_ROWS quantizes
// rows into the X-cache row format, GGML_OP_XQ_REBUILD dequantizes stored rows
// and multiplies them by a weight in one kernel (X̂ never goes to global memory),
// and GGML_OP_XQ_ATTN (xquant-attn.cu) computes attention straight from the rows.
#include "common.cuh"

bool ggml_cuda_xq_supports_op(const ggml_tensor * op);
bool ggml_cuda_xq_attn_supports_op(const ggml_tensor * op);

void ggml_cuda_op_xq_set_rows(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
void ggml_cuda_op_xq_rebuild (ggml_backend_cuda_context & ctx, ggml_tensor * dst);
void ggml_cuda_op_xq_attn    (ggml_backend_cuda_context & ctx, ggml_tensor * dst);
