#pragma once

#include <cstdlib>
#include <cstring>

// Training-only fixes for llama-finetune, switched on by XQ_TRAIN_FIXES=1 so that
// inference is untouched (see shared FIXTURES.md):
//  - attend to k_cur/v_cur while the ubatch is the whole (cleared) window, so
//    that wk and wv receive gradients;
//  - train token_embd.weight.
inline bool finetune_train_fixes_enabled() {
    static const bool enabled = [] {
        const char * value = std::getenv("XQ_TRAIN_FIXES");
        return value != nullptr && std::strcmp(value, "1") == 0;
    }();
    return enabled;
}
