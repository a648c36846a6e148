#pragma once

// CPU kernels of GGML_OP_XQ_SET_ROWS, GGML_OP_XQ_REBUILD and GGML_OP_XQ_ATTN (ggml-xquant.h).
#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;

void ggml_compute_forward_xq_set_rows(const struct ggml_compute_params * params, struct ggml_tensor * dst);
void ggml_compute_forward_xq_rebuild (const struct ggml_compute_params * params, struct ggml_tensor * dst);
void ggml_compute_forward_xq_attn    (const struct ggml_compute_params * params, struct ggml_tensor * dst);
// the i-th cell index of idxs (I64 or I32)
int64_t ggml_xq_index(const struct ggml_tensor * idxs, int64_t i);
// XQuant-CL: the sum of the rows of cell in every layer of a list (ggml_xq_layers), added
// in the order the GEMM path's chained loads add them (GQA-CL: each row through its lift);
// scratch holds one stored row (ggml_xq_layers_scratch floats)
void ggml_xq_sum_layers(const struct ggml_tensor * layers, int64_t cell, float * sum, float * scratch);
int64_t ggml_xq_layers_scratch(const struct ggml_tensor * layers);
// bytes of work buffer XQ_ATTN needs with n_threads threads
size_t ggml_xq_attn_work_size(const struct ggml_tensor * op, int n_threads);

#ifdef __cplusplus
}
#endif
