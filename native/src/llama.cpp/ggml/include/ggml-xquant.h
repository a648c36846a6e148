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
// Sums of many rows of a cell (XQuant-CL) rotate once: each row's values before the rotation
// are added to rotated (raw fp16 rows, which are not rotated, to plain), and
// ggml_xq_unrotate_row then turns rotated into X's values (the rotation is linear).
GGML_API void   ggml_xq_dequantize_row_add(const uint8_t * src, float * rotated, float * plain, int64_t n, int bits);
GGML_API void   ggml_xq_unrotate_row(float * rotated, int64_t n);

// GGML_OP_XQ_SET_ROWS: quantize rows (f32 [n, n_tokens]) into the cells idxs
// (I64 or I32 [n_tokens]) of storage, whose cell i starts at byte i * row_bytes;
// with base (f32 [n, >= max cell + 1]) row - base[cell] is stored instead
// (XQuant-CL's delta); base may also be a layer list (ggml_xq_layers), whose rows
// at the cell are summed. Returns a view of storage, like ggml_set_rows.
GGML_API struct ggml_tensor * ggml_xq_set_rows(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * base,
        int                   bits);

// GQA-CL's XQ_SET_ROWS: rows are in X's space (f32 [width, n_tokens]); what is stored
// is project * (row - the sum of the lifted list layers at the cell), project f32
// [width, n] (rows of n channels). CPU only.
GGML_API struct ggml_tensor * ggml_xq_set_rows_projected(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * rows,
        struct ggml_tensor  * idxs,
        struct ggml_tensor  * layers,
        struct ggml_tensor  * project,
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

// GGML_OP_XQ_LAYERS: the X-cache storages of consecutive layers as one list, for
// XQuant-CL, whose row of a cell at a layer is the sum of the stored rows of every
// layer so far. stored is a layer's XQ_SET_ROWS result (rows of n channels at bits),
// prev the list of the layers before it, or null. Computes nothing: the ops that take
// a list read its storages (ggml_xq_set_rows' base, ggml_xq_attn_cross_layer), which
// spares the n_kv x n accumulator the sum would otherwise be carried in.
GGML_API struct ggml_tensor * ggml_xq_layers(
        struct ggml_context * ctx,
        struct ggml_tensor  * prev,
        struct ggml_tensor  * stored,
        int64_t               n,
        int                   bits);

// GQA-CL's list: each layer's rows (n latent channels) count in the sum through its
// own lift (f32 [n, width]), lift * row, so the sum is of width channels in X's space.
// A list is all lifted or none.
GGML_API struct ggml_tensor * ggml_xq_layers_lifted(
        struct ggml_context * ctx,
        struct ggml_tensor  * prev,
        struct ggml_tensor  * stored,
        struct ggml_tensor  * lift,
        int64_t               n,
        int                   bits);

// the channels of a list's sum: n, or the lift's width
GGML_API int64_t ggml_xq_layers_width(const struct ggml_tensor * layers);

// The reconstruction of a layer list: its first n_kv cells summed over the layers,
// as a chain of ggml_xq_load (and, lifted, mul_mat), f32 [width, n_kv] (for a layer
// that cannot take XQ_ATTN after layers that did).
GGML_API struct ggml_tensor * ggml_xq_layers_load(
        struct ggml_context * ctx,
        struct ggml_tensor  * layers,
        int64_t               n_kv);


// RoPE of the rebuilt K, as ggml_rope_ext takes it (mode GGML_ROPE_TYPE_NORMAL or _NEOX)
struct ggml_xq_attn_rope {
    int   n_rot;
    int   mode;
    int   n_ctx_orig;
    float freq_base;
    float freq_scale;
    float ext_factor;
    float attn_factor;
    float beta_fast;
    float beta_slow;
};

// GGML_OP_XQ_ATTN: attention straight from the X-cache, flash-decoding style.
// For each block of cells in view (storage's first cells->ne[0] cells, rows of
// width channels at bits): dequantize, rebuild K = rope(wk * src, the cell's
// position) from the row's first wk->ne[0] channels, score it against every head
// of q (f32 [head_dim, n_head, n_tokens]) with kq_scale, and keep an online
// softmax. V's source is the row's last v_width channels: the whole row where K
// reads all of it (X), else the channels after K's (the GQA latent's [K | V]).
// storage may also be a lifted layer list (ggml_xq_layers_lifted, GQA-CL, CPU
// only): a cell's row is the list's sum.
//  - wv given: V = wv * src is rebuilt per block and the result is each head's
//    attention output, f32 [head_dim, n_tokens, n_head];
//  - wv null (V absorbed): the result is each head's attention-weighted V
//    source, f32 [v_width, n_tokens, n_head], for the caller's slice of Wv.
// The bias of V is the caller's (the weights sum to 1). Scratch is per thread
// and does not grow with the context.
// cells (I32) holds each cell's position in its first row; which cells a token
// sees comes from one of ggml_xq_attn_set_mask or ggml_xq_attn_set_visibility,
// and one of them is required. The other setters are options.
GGML_API struct ggml_tensor * ggml_xq_attn(
        struct ggml_context * ctx,
        struct ggml_tensor  * storage,
        struct ggml_tensor  * q,
        struct ggml_tensor  * wk,
        struct ggml_tensor  * wv,
        struct ggml_tensor  * cells,
        int64_t               width,
        int                   bits,
        float                 kq_scale,
        const struct ggml_xq_attn_rope * rope);

// The cells each token sees, as a mask (f32/f16 [>= n_kv, >= n_tokens]); cells holds
// positions only.
GGML_API void ggml_xq_attn_set_mask(struct ggml_tensor * attn, struct ggml_tensor * mask);

// The cells each token sees without a mask, which grows with the context (CPU only):
// tokens is I32 [3, >= n_tokens] (sequence, lowest and highest position seen), and cells
// is the cache's cell table, I32 [n_kv, 1 + n_words], whose later rows hold each cell's
// sequences as bits (none: empty), sequence s at bit s % 32 of row 1 + s / 32. Token t
// sees a cell whose bits hold t's sequence and whose position is in t's range.
GGML_API void ggml_xq_attn_set_visibility(struct ggml_tensor * attn, struct ggml_tensor * tokens);

// The ubatch's own cells: their rows are taken from exact_rows (f32 [width, n]) at the
// cells idxs (I32 or I64 [n]) instead of the dequantized storage.
GGML_API void ggml_xq_attn_set_exact_rows(struct ggml_tensor * attn, struct ggml_tensor * exact_rows, struct ggml_tensor * idxs);

// K's bias (f32 [wk->ne[1]]), added before the norm.
GGML_API void ggml_xq_attn_set_k_bias(struct ggml_tensor * attn, struct ggml_tensor * k_bias);

// K's per-head RMS norm (f32 [head_dim]) with eps, before RoPE.
GGML_API void ggml_xq_attn_set_k_norm(struct ggml_tensor * attn, struct ggml_tensor * k_norm, float eps);

// RoPE's frequency factors (f32 [>= n_rot / 2]).
GGML_API void ggml_xq_attn_set_rope_factors(struct ggml_tensor * attn, struct ggml_tensor * rope_factors);

// wv, k_bias, k_norm and rope_factors together take at most GGML_XQ_ATTN_MAX_OPTIONAL
// sources (ggml_xq_attn_fits), two fewer with ggml_xq_attn_cross_layer.
#define GGML_XQ_ATTN_MAX_OPTIONAL 3
GGML_API bool ggml_xq_attn_fits(
        const struct ggml_tensor * wv,
        const struct ggml_tensor * k_bias,
        const struct ggml_tensor * k_norm,
        const struct ggml_tensor * rope_factors);
GGML_API bool ggml_xq_attn_cross_layer_fits(
        const struct ggml_tensor * wv,
        const struct ggml_tensor * k_bias,
        const struct ggml_tensor * k_norm,
        const struct ggml_tensor * rope_factors);

// XQuant-CL through XQ_ATTN: each cell's row becomes its stored row plus the rows
// of the earlier layers in layers (ggml_xq_layers; null for none), RMS-normed with
// eps and times x_norm (f32 [width], the layer's attention norm), before K and V
// are rebuilt; exact rows still replace the whole result. Takes up to two more of
// attn's optional sources (ggml_xq_attn_cross_layer_fits). CPU only.
GGML_API struct ggml_tensor * ggml_xq_attn_cross_layer(
        struct ggml_tensor  * attn,
        struct ggml_tensor  * layers,
        struct ggml_tensor  * x_norm,
        float                 eps);

// Whether the GPU kernels of XQ_ATTN (CUDA, Metal) take op: f32 or f16 wk (wv of
// the same type), or, where the backend converts weights to f16 copies
// (converts_to_f16 non-null), any types that are f16 or that it converts;
// head_dim <= max_head_dim, at most max_rows query heads per kv head, none of the
// cross-layer sources; q, the mask and the exact rows read by their row strides,
// the other sources contiguous.
GGML_API bool ggml_xq_attn_gpu_supported(const struct ggml_tensor * op, int64_t max_head_dim, int64_t max_rows,
        bool (*converts_to_f16)(enum ggml_type type));

// the op's parameters, read back by the kernels
enum ggml_xq_attn_flag {
    GGML_XQ_ATTN_HAS_WV           = 1,
    GGML_XQ_ATTN_HAS_K_BIAS       = 2,
    GGML_XQ_ATTN_HAS_K_NORM       = 4,
    GGML_XQ_ATTN_HAS_ROPE_FACTORS = 8,
    GGML_XQ_ATTN_HAS_LAYERS       = 16, // with GGML_XQ_ATTN_HAS_X_NORM: ggml_xq_attn_cross_layer
    GGML_XQ_ATTN_HAS_X_NORM       = 32,
};
struct ggml_xq_attn_params {
    int32_t bits;
    int32_t width;
    int32_t v_width;
    int32_t flags;
    float   kq_scale;
    float   k_norm_eps;
    struct ggml_xq_attn_rope rope;
    float   x_norm_eps;
};
GGML_API struct ggml_xq_attn_params ggml_xq_attn_get_params(const struct ggml_tensor * op);
// the first source slot of the optional ones, in the flags' order
#define GGML_XQ_ATTN_FIRST_OPTIONAL 7

#ifdef __cplusplus
}
#endif
