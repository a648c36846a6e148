#pragma once

#include "napi.h"

// A generation loop that runs on the evaluation thread: it decodes, samples and
// decodes again without returning to JavaScript between tokens. Through
// node-llama-cpp each token costs a round trip per decode and per sample (thread
// wake-ups, promises), about 1 ms a token (docs/performance.md, "The generation loop").
void addonGenerationLoopRegister(Napi::Env env, Napi::Object exports);
