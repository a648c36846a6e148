#pragma once

// CPU kernels of GGML_OP_XQ_SET_ROWS and GGML_OP_XQ_REBUILD (ggml-xquant.h).
#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;

void ggml_compute_forward_xq_set_rows(const struct ggml_compute_params * params, struct ggml_tensor * dst);
void ggml_compute_forward_xq_rebuild (const struct ggml_compute_params * params, struct ggml_tensor * dst);

#ifdef __cplusplus
}
#endif
