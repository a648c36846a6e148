#pragma once

struct ggml_tensor;
struct llama_layer;

// XQuant's state while one graph is built (llm_graph_context::xq): what build_qkv records
// for build_attn, the inputs the layers of one cache share, and the cross-layer chain that
// each layer hands to the next.
struct llm_graph_xq_state {
    ggml_tensor       * x     = nullptr;     // the layer's attention input X (build_qkv)
    const llama_layer * layer = nullptr;     // the layer build_qkv ran for
    ggml_tensor       * cell_pos[2] = {};    // I32 [n_kv] cell positions: global, sliding-window layers' cache
    ggml_tensor       * visibility[2] = {};  // I32 [3, n_tokens] the tokens' visibility, per cache likewise
    ggml_tensor       * acc    = nullptr;    // XQuant-CL: the previous layer's reconstruction [n_embd, n_kv]
    ggml_tensor       * layers = nullptr;    // XQuant-CL through XQ_ATTN: the layers so far (ggml_xq_layers)
};
