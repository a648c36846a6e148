#include "AddonGenerationLoop.h"

#include "AddonContext.h"
#include "AddonEvaluationThread.h"
#include "AddonModel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

struct GenerationOptions {
    int32_t sequenceId = 0;
    int32_t position = 0;
    int32_t token = 0;
    int32_t maxTokens = 0;
    float temperature = 0;
    int32_t topK = 0;
    float topP = 1;
    uint32_t seed = LLAMA_DEFAULT_SEED;
    // besides the vocabulary's end-of-generation tokens: the chat template's turn ends
    std::vector<llama_token> stopTokens;
    // a speed measurement decodes maxTokens tokens whatever they are
    bool ignoreEndOfGeneration = false;
};

// The first token with the largest logit, as llama.cpp's greedy sampler picks it.
llama_token largestLogit(llama_context * ctx, const llama_vocab * vocab) {
    const float * logits = llama_get_logits_ith(ctx, -1);
    const int32_t vocabSize = llama_vocab_n_tokens(vocab);
    llama_token best = 0;
    for (llama_token token = 1; token < vocabSize; token++) {
        if (logits[token] > logits[best]) best = token;
    }
    return best;
}

// One generation: decode, sample and decode again on the evaluation thread, with no
// round trip to JavaScript between tokens. The sampled tokens go to onTokens in
// batches, at most one call per `deliveryInterval`, so that JavaScript does not wake
// at every token and take a core from ggml's threads while they decode. All tokens
// also go to the result (the calls may land after it). stop() ends the loop before
// its next decode. Like node-llama-cpp, it leaves the context's last cell free.
class GenerationWorker : public Napi::AsyncWorker {
    public:
        GenerationWorker(Napi::Env env, AddonContext * context, const GenerationOptions & options, Napi::Function onTokens,
            std::shared_ptr<std::atomic<bool>> stopRequested)
            : Napi::AsyncWorker(env, "xquantGenerate"), context(context), options(options), stopRequested(std::move(stopRequested)),
              deferred(Napi::Promise::Deferred::New(env)) {
            context->Ref();
            tokenCallback = Napi::ThreadSafeFunction::New(env, onTokens, "xquantGenerateTokens", 0, 1);
        }
        ~GenerationWorker() {
            context->Unref();
        }

        Napi::Promise promise() {
            return deferred.Promise();
        }

    protected:
        void Execute() override {
            addonRunOnEvaluationThread([this]() { Generate(); });
            tokenCallback.Release();
            if (!error.empty()) SetError(error);
        }

        void OnOK() override {
            Napi::Object result = Napi::Object::New(Env());
            Napi::Array tokens = Napi::Array::New(Env(), sampled.size());
            for (size_t index = 0; index < sampled.size(); index++) tokens.Set(index, sampled[index]);
            result.Set("tokens", tokens);
            result.Set("decoded", decoded);
            result.Set("decodeSeconds", decodeSeconds);
            result.Set("stopReason", stopReason);
            deferred.Resolve(result);
        }

        void OnError(const Napi::Error & failure) override {
            deferred.Reject(failure.Value());
        }

    private:
        AddonContext * context;
        GenerationOptions options;
        std::shared_ptr<std::atomic<bool>> stopRequested;
        Napi::Promise::Deferred deferred;
        Napi::ThreadSafeFunction tokenCallback;
        std::vector<llama_token> sampled;
        size_t delivered = 0;
        std::chrono::steady_clock::time_point lastDelivery;
        int32_t decoded = 0;
        // from the first sampled token to the last: the first decode also builds the one-token graph
        double decodeSeconds = 0;
        std::string stopReason;
        std::string error;

        // null at temperature 0: greedy takes the largest logit, without the sampler's
        // copy of the whole vocabulary at every token
        llama_sampler * makeSampler() const {
            if (options.temperature <= 0) return nullptr;
            llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
            if (options.topK > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(options.topK));
            if (options.topP < 1) llama_sampler_chain_add(chain, llama_sampler_init_top_p(options.topP, 1));
            llama_sampler_chain_add(chain, llama_sampler_init_temp(options.temperature));
            llama_sampler_chain_add(chain, llama_sampler_init_dist(options.seed));
            return chain;
        }

        static constexpr std::chrono::milliseconds deliveryInterval{50};

        // Sends the tokens sampled since the last call to onTokens.
        void deliver() {
            auto * batch = new std::vector<llama_token>(sampled.begin() + delivered, sampled.end());
            delivered = sampled.size();
            lastDelivery = std::chrono::steady_clock::now();
            const napi_status status = tokenCallback.NonBlockingCall(batch, [](Napi::Env env, Napi::Function onTokens, std::vector<llama_token> * tokens) {
                Napi::Array array = Napi::Array::New(env, tokens->size());
                for (size_t index = 0; index < tokens->size(); index++) array.Set(index, (*tokens)[index]);
                delete tokens;
                onTokens.Call({ array });
            });
            if (status != napi_ok) delete batch;
        }

        void Generate() {
            if (context->disposed || context->ctx == nullptr) {
                error = "Context is disposed";
                return;
            }
            llama_context * ctx = context->ctx;
            const llama_vocab * vocab = context->model->vocab;
            const int32_t contextSize = (int32_t) llama_n_ctx(ctx);
            llama_sampler * sampler = makeSampler();
            llama_batch batch = llama_batch_init(1, 0, 1);
            llama_token token = options.token;
            int32_t position = options.position;
            stopReason = "maxTokens";
            std::chrono::steady_clock::time_point firstSampledAt;
            for (int32_t generated = 0; generated < options.maxTokens; generated++) {
                if (stopRequested->load()) {
                    stopReason = "stopped";
                    break;
                }
                if (position >= contextSize - 1) {
                    stopReason = "contextFull";
                    break;
                }
                batch.n_tokens = 1;
                batch.token[0] = token;
                batch.pos[0] = position;
                batch.n_seq_id[0] = 1;
                batch.seq_id[0][0] = options.sequenceId;
                batch.logits[0] = true;
                const int status = llama_decode(ctx, batch);
                if (status != 0) {
                    error = "llama_decode failed with status " + std::to_string(status);
                    break;
                }
                decoded++;
                position++;
                token = sampler != nullptr ? llama_sampler_sample(sampler, ctx, -1) : largestLogit(ctx, vocab);
                sampled.push_back(token);
                const auto now = std::chrono::steady_clock::now();
                if (sampled.size() == 1) firstSampledAt = now;
                decodeSeconds = std::chrono::duration<double>(now - firstSampledAt).count();
                if (now - lastDelivery >= deliveryInterval) deliver();
                const bool stops = llama_vocab_is_eog(vocab, token) || std::find(options.stopTokens.begin(), options.stopTokens.end(), token) != options.stopTokens.end();
                if (stops && !options.ignoreEndOfGeneration) {
                    stopReason = "eog";
                    break;
                }
            }
            llama_batch_free(batch);
            if (sampler != nullptr) llama_sampler_free(sampler);
        }
};

int32_t intOption(const Napi::Object & options, const char * name, int32_t fallback) {
    return options.Has(name) && options.Get(name).IsNumber() ? options.Get(name).As<Napi::Number>().Int32Value() : fallback;
}

float floatOption(const Napi::Object & options, const char * name, float fallback) {
    return options.Has(name) && options.Get(name).IsNumber() ? options.Get(name).As<Napi::Number>().FloatValue() : fallback;
}

// xquantGenerate(addonContext, {sequenceId, position, token, maxTokens, temperature, topK, topP, seed, stopTokens,
//   ignoreEndOfGeneration}, onTokens) -> {done: Promise<{tokens, decoded, decodeSeconds, stopReason}>, stop()}
// stopReason: "eog" (an end-of-generation or stop token was sampled), "maxTokens", "contextFull" or "stopped".
Napi::Value xquantGenerate(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsFunction()) {
        Napi::TypeError::New(env, "expected (addonContext, options, onTokens)").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    AddonContext * context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->ctx == nullptr || context->disposed) {
        Napi::Error::New(env, "Context is disposed").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    const Napi::Object given = info[1].As<Napi::Object>();
    GenerationOptions options;
    options.sequenceId = intOption(given, "sequenceId", 0);
    options.position = intOption(given, "position", 0);
    options.token = intOption(given, "token", 0);
    options.maxTokens = intOption(given, "maxTokens", 0);
    options.temperature = floatOption(given, "temperature", 0);
    options.topK = intOption(given, "topK", 0);
    options.topP = floatOption(given, "topP", 1);
    if (given.Has("seed") && given.Get("seed").IsNumber()) options.seed = given.Get("seed").As<Napi::Number>().Uint32Value();
    options.ignoreEndOfGeneration = given.Has("ignoreEndOfGeneration") && given.Get("ignoreEndOfGeneration").ToBoolean().Value();
    if (given.Has("stopTokens") && given.Get("stopTokens").IsArray()) {
        const Napi::Array stopTokens = given.Get("stopTokens").As<Napi::Array>();
        for (uint32_t index = 0; index < stopTokens.Length(); index++) options.stopTokens.push_back(stopTokens.Get(index).As<Napi::Number>().Int32Value());
    }

    auto stopRequested = std::make_shared<std::atomic<bool>>(false);
    auto * worker = new GenerationWorker(env, context, options, info[2].As<Napi::Function>(), stopRequested);
    Napi::Object handle = Napi::Object::New(env);
    handle.Set("done", worker->promise());
    handle.Set("stop", Napi::Function::New(env, [stopRequested](const Napi::CallbackInfo & call) {
        stopRequested->store(true);
        return call.Env().Undefined();
    }));
    worker->Queue();
    return handle;
}

} // namespace

void addonGenerationLoopRegister(Napi::Env env, Napi::Object exports) {
    exports.Set("xquantGenerate", Napi::Function::New(env, xquantGenerate));
}
