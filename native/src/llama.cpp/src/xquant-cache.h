#pragma once

#include "llama-hparams.h"
#include "llama-kv-cache.h"
#include "llama-kv-cache-iswa.h"
#include "llama-memory.h"

#include <memory>
#include <vector>

struct llama_context_params;
struct llama_cparams;
struct llama_model;

// Copies the XQuant fields of the context params into cparams. X modes use one
// unified stream, so that the rebuild reads every sequence's cells from one buffer.
void xq_init_cparams(llama_cparams & cparams, const llama_context_params & params, const llama_model & model);

// What the X-cache stores per layer (llama_context_params.xquant_variant).
enum xq_variant : int32_t {
    XQ_VARIANT_X           = 0, // the attention input X
    XQ_VARIANT_CROSS_LAYER = 1, // XQuant-CL: the residual stream, as deltas against the previous layer's reconstruction
    XQ_VARIANT_LATENT      = 2, // GQA: X in the row spaces of Wk and Wv (2·d_kv wide)
    XQ_VARIANT_LATENT_CL   = 3, // GQA-CL: cross-layer deltas of X in the joint [Wk; Wv] row space
};

// The width of one stored row for a layer: n_embd, or 2·d_kv for the latent variants.
int64_t xq_row_width(const llama_hparams & hparams, int32_t variant, uint32_t il);

// Bits of X stored for model layer il: the first base layers keep base_bits.
int xq_layer_bits(const llama_cparams & cparams, uint32_t il);

// The number of leading layers kept at base bits; -1 in cparams picks the
// paper's 3 of 32 layers, scaled to the model's depth. XQuant-CL needs at
// least one: layer 0 has no previous layer to take a delta against.
uint32_t xq_base_layers(const llama_cparams & cparams, uint32_t n_layer);

// The X-cache: an unmodified llama_kv_cache whose "K" rows are quantized X rows
// (type I8, row width = stored bytes, no V, no RoPE), so cells, sequences,
// state I/O and memory accounting are all inherited. It owns the edited hparams
// the inner cache refers to, and keeps those edits in one place. Sliding-window
// models (gemma3) get llama.cpp's iswa pair instead: the SWA layers' cache keeps
// only the window, the global layers' keeps every cell.
class llama_xq_cache : public llama_memory_i {
public:
    llama_xq_cache(const llama_model & model, const llama_cparams & cparams, bool swa_full, bool offload);

    llama_memory_context_ptr init_batch(llama_batch_allocr & balloc, uint32_t n_ubatch, bool embd_all) override;
    llama_memory_context_ptr init_full() override;
    llama_memory_context_ptr init_update(llama_context * lctx, bool optimize) override;

    bool get_can_shift() const override;

    void clear(bool data) override;

    bool seq_rm  (llama_seq_id seq_id,                              llama_pos p0, llama_pos p1) override;
    void seq_cp  (llama_seq_id seq_id_src, llama_seq_id seq_id_dst, llama_pos p0, llama_pos p1) override;
    void seq_keep(llama_seq_id seq_id)                                                          override;
    void seq_add (llama_seq_id seq_id,                              llama_pos p0, llama_pos p1, llama_pos shift) override;
    void seq_div (llama_seq_id seq_id,                              llama_pos p0, llama_pos p1, int d) override;

    llama_pos seq_pos_min(llama_seq_id seq_id) const override;
    llama_pos seq_pos_max(llama_seq_id seq_id) const override;

    std::map<ggml_backend_buffer_type_t, size_t> memory_breakdown() const override;

    void state_write(llama_io_write_i & io, llama_seq_id seq_id = -1, llama_state_seq_flags flags = 0) const override;
    void state_read (llama_io_read_i  & io, llama_seq_id seq_id = -1, llama_state_seq_flags flags = 0) override;

    // the cache of the global (non-SWA) layers; with no SWA, of every layer
    const llama_kv_cache & get_base() const;

    // the sliding-window layers' cache, or nullptr
    const llama_kv_cache * get_swa() const;

    // bits per layer; identifies the cache layout in saved states
    const std::vector<int32_t> & get_layer_bits() const { return layer_bits; }

    int32_t get_variant() const { return variant; }

    uint32_t get_base_layers() const { return base_layers; }

private:
    llama_hparams xhparams;
    int32_t variant;
    uint32_t base_layers;
    std::vector<int32_t> layer_bits;
    std::unique_ptr<llama_memory_i> inner; // llama_kv_cache, or llama_kv_cache_iswa with SWA
};

// Creates the X-cache, or throws naming what is unsupported (architecture,
// fused QKV, shape, bits, a cross-layer variant on sliding-window layers).
llama_memory_i * llama_xq_cache_create(const llama_model & model, const llama_cparams & cparams, bool swa_full, bool offload);
