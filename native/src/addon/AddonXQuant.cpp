#include "AddonXQuant.h"

#include "AddonContext.h"
#include "AddonGenerationLoop.h"
#include "xquant.h"

#include <mutex>
#include <set>
#include <string>

namespace {

struct PendingXQuantOptions {
    int32_t bits = 0;
    int32_t base_layers = -1;
    int32_t base_bits = 4;
    int32_t variant = 0;
    bool absorb_v = true;
    bool exact_ubatch = true;
    bool fused_attention = true;
    std::string factors_path;
};

std::mutex pendingMutex;
PendingXQuantOptions pending;
// llama_context_params holds a char pointer that must outlive the context
std::set<std::string> factorPaths;

int32_t optionalInt(const Napi::Object & options, const char * name, int32_t fallback) {
    return options.Has(name) && options.Get(name).IsNumber() ? options.Get(name).As<Napi::Number>().Int32Value() : fallback;
}

bool optionalBool(const Napi::Object & options, const char * name, bool fallback) {
    return options.Has(name) && options.Get(name).IsBoolean() ? options.Get(name).As<Napi::Boolean>().Value() : fallback;
}

// setXQuantNextContext({bits, baseLayers, baseBits, variant, factorsPath, absorbV, exactUbatch, fusedAttention}) or setXQuantNextContext(null) to clear
Napi::Value setXQuantNextContext(const Napi::CallbackInfo & info) {
    std::lock_guard<std::mutex> lock(pendingMutex);
    pending = PendingXQuantOptions();
    if (info.Length() > 0 && info[0].IsObject()) {
        const auto options = info[0].As<Napi::Object>();
        pending.bits = optionalInt(options, "bits", 0);
        pending.base_layers = optionalInt(options, "baseLayers", -1);
        pending.base_bits = optionalInt(options, "baseBits", 4);
        pending.variant = optionalInt(options, "variant", 0);
        pending.absorb_v = optionalBool(options, "absorbV", true);
        pending.exact_ubatch = optionalBool(options, "exactUbatch", true);
        pending.fused_attention = optionalBool(options, "fusedAttention", true);
        if (options.Has("factorsPath") && options.Get("factorsPath").IsString()) {
            pending.factors_path = options.Get("factorsPath").As<Napi::String>().Utf8Value();
        }
    }
    return info.Env().Undefined();
}

// getXQuantCacheInfo(addonContext) -> {bits, baseBits, baseLayers, bytes, bitsPerElement, cells, cellsUsed, ..., computeBytes} or null
Napi::Value getXQuantCacheInfo(const Napi::CallbackInfo & info) {
    if (info.Length() < 1 || !info[0].IsObject()) {
        Napi::TypeError::New(info.Env(), "expected an AddonContext").ThrowAsJavaScriptException();
        return info.Env().Undefined();
    }
    AddonContext * context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->ctx == nullptr || context->disposed) {
        return info.Env().Null();
    }
    const llama_xquant_cache_info cache = llama_xquant_get_cache_info(context->ctx);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("bits", cache.bits);
    result.Set("baseBits", cache.base_bits);
    result.Set("baseLayers", cache.base_layers);
    result.Set("variant", cache.variant);
    result.Set("bytes", (double) cache.bytes);
    result.Set("bitsPerElement", cache.bits_per_element);
    result.Set("cells", cache.n_cells);
    result.Set("cellsUsed", cache.n_cells_used);
    result.Set("factorBytes", (double) cache.factor_bytes);
    result.Set("factorSeconds", cache.factor_seconds);
    result.Set("factorsFromDisk", cache.factors_from_disk);
    result.Set("computeBytes", (double) cache.compute_bytes);
    return result;
}

// getXQuantArchitectures() -> "llama, qwen2, ...": the architectures the X-cache modes support
Napi::Value getXQuantArchitectures(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), llama_xquant_supported_architectures());
}

} // namespace

void addonXQuantApplyPendingContextOptions(llama_context_params & params, bool simulator_model) {
    if (simulator_model) {
        return;
    }
    std::lock_guard<std::mutex> lock(pendingMutex);
    params.xquant_bits = pending.bits;
    params.xquant_base_layers = pending.base_layers;
    params.xquant_base_bits = pending.base_bits;
    params.xquant_variant = pending.variant | (pending.absorb_v ? 0 : LLAMA_XQUANT_PLAIN_V) | (pending.exact_ubatch ? 0 : LLAMA_XQUANT_QUANTIZED_UBATCH)
        | (pending.fused_attention ? 0 : LLAMA_XQUANT_GEMM_ATTN);
    params.xquant_factors_path = pending.factors_path.empty() ? nullptr : factorPaths.insert(pending.factors_path).first->c_str();
}

void addonXQuantRegister(Napi::Env env, Napi::Object exports) {
    exports.Set("setXQuantNextContext", Napi::Function::New(env, setXQuantNextContext));
    exports.Set("getXQuantCacheInfo", Napi::Function::New(env, getXQuantCacheInfo));
    exports.Set("getXQuantArchitectures", Napi::Function::New(env, getXQuantArchitectures));
    addonGenerationLoopRegister(env, exports);
}
