// CUDA kernels of the XQuant ops, host side: supports_op and the launches.
// The kernels are in xquant-kernels.cuh; the CPU reference is
// ggml-cpu/xquant-ops.cpp and the row format is defined in ggml-xquant.cpp.
#include "xquant.cuh"
#include "xquant-kernels.cuh"
#include "ggml-xquant.h"

bool ggml_cuda_xq_supports_op(const ggml_tensor * op) {
    const int bits = ggml_get_op_params_i32(op, 0);
    const int64_t n = ggml_get_op_params_i32(op, 1);
    // the transposed load has no GPU kernel: it feeds V absorption on the CPU
    if (!ggml_xq_bits_supported(bits) || ggml_xq_group_size(n) == 0 || ggml_xq_is_transposed(op)) {
        return false;
    }
    if (op->op == GGML_OP_XQ_SET_ROWS) {
        // base as f32 rows only: a layer list (ggml_xq_layers, XQuant-CL) is summed on the CPU
        const ggml_tensor * base = op->src[3];
        return op->src[0]->type == GGML_TYPE_F32 && (op->src[1]->type == GGML_TYPE_I64 || op->src[1]->type == GGML_TYPE_I32)
            && (base == nullptr || base->type == GGML_TYPE_F32);
    }
    const ggml_tensor * w = op->src[1];
    return w == nullptr || w->type == GGML_TYPE_F32 || w->type == GGML_TYPE_F16;
}

template <int G>
static void xq_set_rows_launch(const ggml_tensor * dst, int bits, cudaStream_t stream) {
    const ggml_tensor * rows = dst->src[0];
    const ggml_tensor * idxs = dst->src[1];
    const ggml_tensor * base = dst->src[3];
    const int64_t n = rows->ne[0];
    if (rows->ne[1] == 0) {
        return;
    }
    const dim3 grid(rows->ne[1], n / G);
    k_xq_set_rows<G><<<grid, XQ_WARP, 0, stream>>>(
        (const char *) rows->data, rows->nb[1], (const char *) idxs->data, idxs->type == GGML_TYPE_I64,
        base ? (const char *) base->data : nullptr, base ? base->nb[1] : 0,
        (uint8_t *) dst->data, bits, ggml_xq_row_bytes(n, bits));
}

template <int G>
static void xq_rebuild_launch(const ggml_tensor * dst, int bits, int64_t n, cudaStream_t stream) {
    const ggml_tensor * stored = dst->src[0];
    const ggml_tensor * w      = dst->src[1];
    const ggml_tensor * bias   = dst->src[2];
    const ggml_tensor * base   = dst->src[3];
    const int64_t n_kv = dst->ne[1];
    const int64_t row_bytes = ggml_xq_row_bytes(n, bits);
    if (n_kv == 0) {
        return;
    }
    if (w == nullptr) {
        const dim3 grid(n_kv, n / G);
        k_xq_load<G><<<grid, XQ_WARP, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, base ? (const char *) base->data : nullptr, base ? base->nb[1] : 0,
            (char *) dst->data, dst->nb[1], bits);
        return;
    }
    const int64_t n_out = w->ne[1];
    const dim3 grid((n_out + XQ_TILE_O - 1) / XQ_TILE_O, (n_kv + XQ_TILE_J - 1) / XQ_TILE_J);
    const float * b = bias ? (const float *) bias->data : nullptr;
    if (w->type == GGML_TYPE_F16) {
        k_xq_rebuild<G, half><<<grid, XQ_THREADS, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, (const half *) w->data, w->nb[1] / sizeof(half),
            b, (float *) dst->data, dst->nb[1], n, n_out, n_kv, bits);
    } else {
        GGML_ASSERT(w->type == GGML_TYPE_F32);
        k_xq_rebuild<G, float><<<grid, XQ_THREADS, 0, stream>>>(
            (const uint8_t *) stored->data, row_bytes, (const float *) w->data, w->nb[1] / sizeof(float),
            b, (float *) dst->data, dst->nb[1], n, n_out, n_kv, bits);
    }
}

void ggml_cuda_op_xq_set_rows(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    cudaStream_t stream = ctx.stream();
    switch (ggml_xq_group_size(n)) {
        case 128: xq_set_rows_launch<128>(dst, bits, stream); break;
        case 64:  xq_set_rows_launch<64> (dst, bits, stream); break;
        case 32:  xq_set_rows_launch<32> (dst, bits, stream); break;
        default:  GGML_ABORT("XQ_SET_ROWS: row width %lld has no group size", (long long) n);
    }
    CUDA_CHECK(cudaGetLastError());
}

void ggml_cuda_op_xq_rebuild(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    cudaStream_t stream = ctx.stream();
    switch (ggml_xq_group_size(n)) {
        case 128: xq_rebuild_launch<128>(dst, bits, n, stream); break;
        case 64:  xq_rebuild_launch<64> (dst, bits, n, stream); break;
        case 32:  xq_rebuild_launch<32> (dst, bits, n, stream); break;
        default:  GGML_ABORT("XQ_REBUILD: row width %lld has no group size", (long long) n);
    }
    CUDA_CHECK(cudaGetLastError());
}
