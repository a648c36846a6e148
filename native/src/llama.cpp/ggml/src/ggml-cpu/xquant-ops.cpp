// CPU kernels of the XQuant ops: the reference that test-backend-ops compares
// the GPU backends against. They call the row format's own functions
// (ggml-xquant.cpp), so they store and load exactly the bytes and values of
// the X-cache's custom ops, and the rebuild's dot products are the CPU
// mul_mat's (the weight type's vec_dot against X̂ in its vec_dot_type).
#include "xquant-ops.h"
#include "ggml-cpu-impl.h"
#include "ggml-cpu.h"
#include "ggml-xquant.h"
#include "vec.h"

#include <algorithm>
#include <vector>

int64_t ggml_xq_index(const ggml_tensor * idxs, int64_t i) {
    return idxs->type == GGML_TYPE_I64 ? ((const int64_t *) idxs->data)[i] : ((const int32_t *) idxs->data)[i];
}

void ggml_xq_sum_layers(const ggml_tensor * layers, int64_t cell, float * sum, float * scratch) {
    const ggml_tensor * prev = layers->src[0];
    const ggml_tensor * stored = layers->src[1];
    const ggml_tensor * lift = layers->src[2];
    const int bits = ggml_get_op_params_i32(layers, 0);
    const int64_t n = ggml_get_op_params_i32(layers, 1);
    const uint8_t * row = (const uint8_t *) stored->data + cell * ggml_xq_row_bytes(n, bits);
    if (lift) {
        // GQA-CL: the sum so far plus this layer's latent through its lift
        const int64_t width = lift->ne[1];
        if (prev) {
            ggml_xq_sum_layers(prev, cell, sum, scratch);
        } else {
            std::fill(sum, sum + width, 0.0f);
        }
        ggml_xq_dequantize_row(row, scratch, n, bits);
        for (int64_t i = 0; i < width; ++i) {
            float lifted;
            ggml_vec_dot_f32((int) n, &lifted, 0, (const float *) ((const char *) lift->data + i * lift->nb[1]), 0, scratch, 0, 1);
            sum[i] = sum[i] + lifted;
        }
        return;
    }
    if (prev == nullptr) {
        ggml_xq_dequantize_row(row, sum, n, bits);
        return;
    }
    // this layer's load adds the previous layers' reconstruction (ggml_xq_load's base)
    ggml_xq_sum_layers(prev, cell, sum, scratch);
    ggml_xq_dequantize_row(row, scratch, n, bits);
    for (int64_t i = 0; i < n; ++i) {
        sum[i] = scratch[i] + sum[i];
    }
}

int64_t ggml_xq_layers_scratch(const ggml_tensor * layers) {
    int64_t n = 0;
    for (const ggml_tensor * layer = layers; layer != nullptr; layer = layer->src[0]) {
        n = std::max<int64_t>(n, ggml_get_op_params_i32(layer, 1));
    }
    return n;
}

void ggml_compute_forward_xq_set_rows(const ggml_compute_params * params, ggml_tensor * dst) {
    const ggml_tensor * rows = dst->src[0];
    const ggml_tensor * idxs = dst->src[1];
    const ggml_tensor * base = dst->src[3];
    const ggml_tensor * project = dst->src[4]; // GQA-CL: rows in X's space, stored through project
    const bool base_is_layers = base && base->op == GGML_OP_XQ_LAYERS;
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    const int64_t n_in = rows->ne[0];
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
    std::vector<float> delta(base ? n_in : 0);
    std::vector<float> projected(project ? n : 0);
    std::vector<float> layers_sum(base_is_layers ? n_in + ggml_xq_layers_scratch(base) : 0);
    for (int64_t t = params->ith; t < rows->ne[1]; t += params->nth) {
        const int64_t cell = ggml_xq_index(idxs, t);
        GGML_ASSERT(cell >= 0 && (size_t) (cell + 1) * row_bytes <= ggml_nbytes(dst));
        const float * row = (const float *) ((const char *) rows->data + t * rows->nb[1]);
        if (base) {
            if (base_is_layers) {
                ggml_xq_sum_layers(base, cell, layers_sum.data(), layers_sum.data() + n_in);
            }
            const float * prev = base_is_layers ? layers_sum.data() : (const float *) ((const char *) base->data + cell * base->nb[1]);
            for (int64_t i = 0; i < n_in; ++i) {
                delta[i] = row[i] - prev[i];
            }
            row = delta.data();
        }
        if (project) {
            for (int64_t i = 0; i < n; ++i) {
                ggml_vec_dot_f32((int) n_in, &projected[i], 0, (const float *) ((const char *) project->data + i * project->nb[1]), 0, row, 0, 1);
            }
            row = projected.data();
        }
        ggml_xq_quantize_row(row, (uint8_t *) dst->data + cell * row_bytes, n, bits);
    }
}

// The transposed load: blocks of cells are dequantized into a small row-major
// tile, then written channel by channel, so every write is a run of cells.
// Cells given exact rows (src[1], at the cells src[2]) take those instead.
static void xq_load_transposed(const ggml_compute_params * params, ggml_tensor * dst) {
    constexpr int64_t block = 16;
    const ggml_tensor * stored = dst->src[0];
    const ggml_tensor * exact = dst->src[1];
    const ggml_tensor * idxs = dst->src[2];
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = dst->ne[1];
    const int64_t n_kv = dst->ne[0];
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
    std::vector<float> tile(block * n);
    for (int64_t cell0 = params->ith * block; cell0 < n_kv; cell0 += params->nth * block) {
        const int64_t cells = std::min(block, n_kv - cell0);
        for (int64_t c = 0; c < cells; ++c) {
            ggml_xq_dequantize_row((const uint8_t *) stored->data + (cell0 + c) * row_bytes, tile.data() + c * n, n, bits);
        }
        for (int64_t i = 0; i < n; ++i) {
            float * out = (float *) ((char *) dst->data + i * dst->nb[1]) + cell0;
            for (int64_t c = 0; c < cells; ++c) {
                out[c] = tile[c * n + i];
            }
        }
        for (int64_t t = 0; exact && t < exact->ne[1]; ++t) {
            const int64_t cell = ggml_xq_index(idxs, t);
            if (cell < cell0 || cell >= cell0 + cells) {
                continue;
            }
            const float * row = (const float *) ((const char *) exact->data + t * exact->nb[1]);
            for (int64_t i = 0; i < n; ++i) {
                ((float *) ((char *) dst->data + i * dst->nb[1]))[cell] = row[i];
            }
        }
    }
}

void ggml_compute_forward_xq_rebuild(const ggml_compute_params * params, ggml_tensor * dst) {
    if (ggml_xq_is_transposed(dst)) {
        xq_load_transposed(params, dst);
        return;
    }
    const ggml_tensor * stored = dst->src[0];
    const ggml_tensor * w      = dst->src[1];
    const ggml_tensor * bias   = dst->src[2];
    const ggml_tensor * base   = dst->src[3];
    const int bits = ggml_get_op_params_i32(dst, 0);
    const int64_t n = ggml_get_op_params_i32(dst, 1);
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);

    const ggml_type vec_dot_type = w ? ggml_get_type_traits_cpu(w->type)->vec_dot_type : GGML_TYPE_F32;
    ggml_vec_dot_t const vec_dot = w ? ggml_get_type_traits_cpu(w->type)->vec_dot : nullptr;
    ggml_from_float_t const from_float = ggml_get_type_traits_cpu(vec_dot_type)->from_float;

    std::vector<float> x_hat(w ? n : 0);
    std::vector<char> x_dot(w && vec_dot_type != GGML_TYPE_F32 ? ggml_row_size(vec_dot_type, n) : 0);
    for (int64_t cell = params->ith; cell < dst->ne[1]; cell += params->nth) {
        float * out = (float *) ((char *) dst->data + cell * dst->nb[1]);
        float * x = w ? x_hat.data() : out;
        ggml_xq_dequantize_row((const uint8_t *) stored->data + cell * row_bytes, x, n, bits);
        if (base) {
            const float * prev = (const float *) ((const char *) base->data + cell * base->nb[1]);
            for (int64_t i = 0; i < n; ++i) {
                x[i] += prev[i];
            }
        }
        if (!w) {
            continue;
        }
        const void * x_vec = x;
        if (vec_dot_type != GGML_TYPE_F32) {
            from_float(x, x_dot.data(), n);
            x_vec = x_dot.data();
        }
        for (int64_t o = 0; o < w->ne[1]; ++o) {
            vec_dot((int) n, out + o, 0, (const char *) w->data + o * w->nb[1], 0, x_vec, 0, 1);
            if (bias) {
                out[o] += ((const float *) bias->data)[o];
            }
        }
    }
}
