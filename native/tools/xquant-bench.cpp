// The rebuild's GEMMs against a plain ggml GEMM of the same shape, for `npm run bench`.
//
//   xquant-bench MODEL MODE DEPTH THREADS STEPS
//
// Fills a context of DEPTH cells, then decodes STEPS tokens with an eval callback
// that makes the scheduler compute the graph one node at a time, and times the
// rebuild's nodes: the dequantization (xq_loaded-*) and the K/V projections
// (xq_k_rebuild-*, xq_v_rebuild-*). Then it times a plain mul_mat of each
// projection's shape on the same weights with the same threads. The first step
// is a warm-up. Prints one JSON object; MODE: see xquant-modes.h.
#include "llama.h"
#include "xquant-modes.h"
#include "xquant-tool.h"

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// One projection shape: weights [k, m] of a type times activations [k, n].
struct GemmShape {
    ggml_type type;
    int64_t k, m, n;
    std::vector<uint8_t> weights;

    double flops() const { return 2.0 * k * m * n; }
    bool operator<(const GemmShape & other) const { return std::tie(type, k, m, n) < std::tie(other.type, other.k, other.m, other.n); }
};

struct Profile {
    bool on = false;
    clock_type::time_point last;
    double dequant_seconds = 0.0;
    double gemm_seconds = 0.0;
    double gemm_flops = 0.0;
    double other_seconds = 0.0;
    std::map<std::string, double> other_by_op; // the rest, per ggml op, for the profile
    std::map<GemmShape, int> gemm_calls; // per shape, over the timed steps
};

bool starts_with(const char * name, const char * prefix) {
    return std::strncmp(name, prefix, std::strlen(prefix)) == 0;
}

// Asks for every node while on, so that each one is computed alone and the time
// since the previous callback is its own.
bool profile_node(ggml_tensor * t, bool ask, void * user_data) {
    Profile & p = *(Profile *) user_data;
    if (!p.on) {
        return false;
    }
    if (ask) {
        return true;
    }
    const double dt = seconds_since(p.last);
    p.last = clock_type::now();
    if (starts_with(t->name, "xq_loaded")) {
        p.dequant_seconds += dt;
    } else if (t->op == GGML_OP_MUL_MAT && (starts_with(t->name, "xq_k_rebuild") || starts_with(t->name, "xq_v_rebuild"))) {
        const ggml_tensor * w = t->src[0];
        GemmShape shape { w->type, w->ne[0], w->ne[1], t->src[1]->ne[1], {} };
        p.gemm_seconds += dt;
        p.gemm_flops += shape.flops();
        auto found = p.gemm_calls.find(shape);
        if (found == p.gemm_calls.end()) {
            shape.weights.resize(ggml_nbytes(w));
            ggml_backend_tensor_get(w, shape.weights.data(), 0, shape.weights.size());
            p.gemm_calls.emplace(std::move(shape), 1);
        } else {
            found->second += 1;
        }
    } else {
        p.other_seconds += dt;
        p.other_by_op[ggml_op_desc(t)] += dt;
    }
    return true;
}

void decode(llama_context * ctx, const std::vector<llama_token> & toks, llama_pos pos0) {
    llama_batch batch = llama_batch_init((int32_t) toks.size(), 0, 1);
    for (size_t i = 0; i < toks.size(); ++i) {
        batch.token[i] = toks[i];
        batch.pos[i] = pos0 + (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = i + 1 == toks.size();
    }
    batch.n_tokens = (int32_t) toks.size();
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed\n");
        std::exit(2);
    }
    llama_batch_free(batch);
}

// Median seconds of a plain mul_mat(weights, random activations) on the CPU backend.
double time_plain_gemm(const GemmShape & shape, int threads, int reps) {
    ggml_init_params params = { 3 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(params);
    ggml_tensor * w = ggml_new_tensor_2d(ctx, shape.type, shape.k, shape.m);
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, shape.k, shape.n);
    ggml_tensor * y = ggml_mul_mat(ctx, w, x);
    ggml_cgraph * graph = ggml_new_graph(ctx);
    ggml_build_forward_expand(graph, y);

    ggml_backend_t backend = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(ggml_backend_get_device(backend));
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    set_threads(backend, threads);
    ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(ctx, backend);
    ggml_backend_tensor_set(w, shape.weights.data(), 0, shape.weights.size());
    std::vector<float> values(shape.k * shape.n);
    unsigned state = 1;
    for (float & v : values) {
        state = state * 1664525u + 1013904223u;
        v = (float) (state >> 8) / (float) (1u << 24) - 0.5f;
    }
    ggml_backend_tensor_set(x, values.data(), 0, values.size() * sizeof(float));

    std::vector<double> times;
    for (int rep = 0; rep <= reps; ++rep) {
        const auto start = clock_type::now();
        ggml_backend_graph_compute(backend, graph);
        if (rep > 0) { // the first run is a warm-up
            times.push_back(seconds_since(start));
        }
    }
    std::sort(times.begin(), times.end());
    ggml_backend_buffer_free(buffer);
    ggml_backend_free(backend);
    ggml_free(ctx);
    return times[times.size() / 2];
}

} // namespace

int main(int argc, char ** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s MODEL MODE DEPTH THREADS STEPS\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[2];
    const int depth = std::atoi(argv[3]);
    const int threads = std::atoi(argv[4]);
    const int steps = std::atoi(argv[5]);
    if (steps < 2 || depth <= steps) {
        std::fprintf(stderr, "need STEPS >= 2 and DEPTH > STEPS\n");
        return 2;
    }

    llama_model * model = xq_tool_load_model(argv[1]);

    Profile profile;
    llama_context_params params = llama_context_default_params();
    params.n_ctx = depth;
    params.n_batch = params.n_ubatch = 512;
    params.n_threads = params.n_threads_batch = threads;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    params.cb_eval = profile_node;
    params.cb_eval_user_data = &profile;
    if (!xq_apply_mode(mode, -1, params)) {
        std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
        return 2;
    }
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr) {
        std::fprintf(stderr, "could not create a %s context\n", mode.c_str());
        return 2;
    }

    // a deterministic token stream that avoids the special tokens 0-2
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<llama_token> toks(depth);
    unsigned state = 5;
    for (llama_token & t : toks) {
        state = state * 1664525u + 1013904223u;
        t = 3 + (llama_token) ((state >> 8) % (unsigned) (n_vocab - 3));
    }
    const int prefill = depth - steps;
    for (int pos = 0; pos < prefill; pos += 512) {
        decode(ctx, std::vector<llama_token>(toks.begin() + pos, toks.begin() + std::min(prefill, pos + 512)), pos);
    }
    for (int step = 0; step < steps; ++step) {
        if (step == 1) { // the first step is a warm-up
            profile = Profile();
        }
        profile.on = true;
        profile.last = clock_type::now();
        decode(ctx, { toks[prefill + step] }, prefill + step);
        profile.on = false;
    }
    llama_free(ctx);

    const int timed = steps - 1;
    double plain_seconds = 0.0;
    std::string shapes;
    for (const auto & [shape, calls] : profile.gemm_calls) {
        const double seconds = time_plain_gemm(shape, threads, 5);
        plain_seconds += seconds * calls;
        shapes += std::string(shapes.empty() ? "" : ",") + "{\"type\":\"" + ggml_type_name(shape.type) + "\",\"k\":" + std::to_string(shape.k)
            + ",\"m\":" + std::to_string(shape.m) + ",\"n\":" + std::to_string(shape.n) + ",\"callsPerStep\":" + std::to_string(calls / timed)
            + ",\"plainGflops\":" + std::to_string(shape.flops() / seconds / 1e9) + "}";
    }
    std::string other_ops;
    for (const auto & [op, seconds] : profile.other_by_op) {
        other_ops += std::string(other_ops.empty() ? "" : ",") + "\"" + op + "\":" + std::to_string(1e3 * seconds / timed);
    }
    const double rebuild_gflops = profile.gemm_seconds > 0 ? profile.gemm_flops / profile.gemm_seconds / 1e9 : 0.0;
    const double plain_gflops = plain_seconds > 0 ? profile.gemm_flops / plain_seconds / 1e9 : 0.0;
    std::printf("{\"mode\":\"%s\",\"depth\":%d,\"threads\":%d,\"timedSteps\":%d,\"gemmFlopsPerStep\":%.6e,"
                "\"rebuildGemmMsPerStep\":%.4f,\"dequantMsPerStep\":%.4f,\"otherMsPerStep\":%.4f,"
                "\"rebuildGemmGflops\":%.4f,\"plainGemmGflops\":%.4f,\"shareOfPlain\":%.4f,\"shapes\":[%s],\"otherMsPerStepByOp\":{%s}}\n",
            mode.c_str(), depth, threads, timed, profile.gemm_flops / timed,
            1e3 * profile.gemm_seconds / timed, 1e3 * profile.dequant_seconds / timed, 1e3 * profile.other_seconds / timed,
            rebuild_gflops, plain_gflops, plain_gflops > 0 ? rebuild_gflops / plain_gflops : 0.0, shapes.c_str(), other_ops.c_str());
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
