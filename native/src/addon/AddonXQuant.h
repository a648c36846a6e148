#pragma once

#include "napi.h"
#include "llama.h"

// node-llama-cpp's JS layer passes a fixed set of context options to
// AddonContext, so the XQuant mode travels through a pending slot: the engine
// sets it, creates the context, then clears it. Every context made for a real
// model meanwhile gets it (node-llama-cpp may retry with a smaller size); the
// contexts node-llama-cpp makes on its no_alloc simulator model, to estimate
// memory, do not.
void addonXQuantApplyPendingContextOptions(llama_context_params & params, bool simulator_model);

void addonXQuantRegister(Napi::Env env, Napi::Object exports);
