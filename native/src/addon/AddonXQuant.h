#pragma once

#include "napi.h"
#include "llama.h"

// node-llama-cpp's JS layer passes a fixed set of context options to
// AddonContext, so the XQuant mode travels through a pending slot: the engine
// sets it, creates the context (which consumes it), then clears it.
void addonXQuantApplyPendingContextOptions(llama_context_params & params);

void addonXQuantRegister(Napi::Env env, Napi::Object exports);
