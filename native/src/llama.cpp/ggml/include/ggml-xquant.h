#pragma once

// XQuant X-cache rows as ggml ops (native/README.md, "GPU kernels").
//
// Row format (XQuant, Tomar et al. 2025): per group of 128 channels (64 or 32
// where 128 does not divide the row) a normalised Walsh-Hadamard rotation, then
// asymmetric uniform quantization, stored as [fp16 scale][fp16 min][packed codes]
// with the codes little-endian in a bit stream. bits: 2, 3, 4, 8; 16 stores raw fp16.

#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GGML_XQ_GROUP_MAX 128
// range candidates of the quantizer: 16/16, 15/16, ..., 8/16 of a group's min-max range
#define GGML_XQ_CLIP_STEPS 9

// group width for a row of n channels (128, 64 or 32; 0 if none divides n)
GGML_API int    ggml_xq_group_size(int64_t n);
// bytes of one stored row of n channels at the given bits
GGML_API size_t ggml_xq_row_bytes(int64_t n, int bits);
GGML_API bool   ggml_xq_bits_supported(int bits);
// in-place normalised Walsh-Hadamard transform of n values (n a power of two); its own inverse
GGML_API void   ggml_xq_hadamard(float * x, int n);
GGML_API void   ggml_xq_quantize_row  (const float   * src, uint8_t * dst, int64_t n, int bits);
GGML_API void   ggml_xq_dequantize_row(const uint8_t * src, float   * dst, int64_t n, int bits);

// GGML_OP_XQ_SET_ROWS: quantize rows (f32 [n, n_tokens]) into the cells idxs
// (I64 or I32 [n_tokens]) of storage, whose cell i starts at byte i * row_bytes;
// with base (f32 [n, >= max cell + 1]) row - base[cell] is stored instead
// (XQuant-CL's delta). Returns a view of storage, like ggml_set_rows.
GGML_API struct ggml_tensor * ggml_xq_set_rows(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * base,
        int                   bits);

// GGML_OP_XQ_REBUILD, fused: the first n_kv cells of storage dequantized and
// multiplied by w (f32 or f16 [n, n_out], as in ggml_mul_mat(w, x_hat)), plus
// bias (f32 [n_out]) when given: f32 [n_out, n_kv]. X̂ stays in registers and
// shared memory on the GPU backends.
GGML_API struct ggml_tensor * ggml_xq_rebuild(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * w,
        struct ggml_tensor  * bias,
        int64_t               n_kv,
        int                   bits);

// GGML_OP_XQ_REBUILD without w: the first n_kv cells dequantized, plus base's
// rows (f32 [n, >= n_kv]) when given (XQuant-CL's accumulator): f32 [n, n_kv].
GGML_API struct ggml_tensor * ggml_xq_load(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * base,
        int64_t               n,
        int64_t               n_kv,
        int                   bits);

// The load form of GGML_OP_XQ_REBUILD with the result transposed: f32 [n_kv, n],
// each channel's values over the cells contiguous. It feeds V absorption, which
// weights X̂ by attention over the cells. With exact_rows (f32 [n, n_tokens]) and
// idxs, those cells take the exact rows instead. CPU only (op param 2 is set).
GGML_API struct ggml_tensor * ggml_xq_load_transposed(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * exact_rows,
        struct ggml_tensor  * idxs,
        int64_t               n,
        int64_t               n_kv,
        int                   bits);

// Whether an XQ_REBUILD writes its result transposed (ggml_xq_load_transposed).
GGML_API bool ggml_xq_is_transposed(const struct ggml_tensor * op);

#ifdef __cplusplus
}
#endif
