#pragma once

// What every XQuant command-line program does first: errors-only logging,
// the backends (the best CPU variant this CPU runs, from the program's folder),
// and the model on the CPU (exit 2 when it cannot be loaded).

#include "ggml-backend.h"
#include "llama.h"

#include <cstdio>
#include <cstdlib>

// use_mmap false reads the weights into the process's own memory (counted in its RSS)
inline llama_model * xq_tool_load_model(const char * path, bool use_mmap = true) {
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level >= GGML_LOG_LEVEL_ERROR) {
            std::fputs(text, stderr);
        }
    }, nullptr);
    ggml_backend_load_all();
    llama_backend_init();
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = 0;
    params.progress_callback = [](float, void *) { return true; }; // no progress dots on stderr
    if (!use_mmap) {
        params.load_mode = LLAMA_LOAD_MODE_NONE;
    }
    llama_model * model = llama_model_load_from_file(path, params);
    if (model == nullptr) {
        std::fprintf(stderr, "could not load %s\n", path);
        std::exit(2);
    }
    return model;
}
