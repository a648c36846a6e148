#include "xquant-latent.h"

#include "llama-impl.h"
#include "llama-model.h"

#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace {

using matrix = std::vector<double>; // row-major

constexpr uint32_t FACTORS_MAGIC = 0x464c5158; // "XQLF"
constexpr uint32_t FACTORS_VERSION = 4; // 2 rotated the latents; 3 did not; 4: whiten K and V (docs/results.md)

// The weights of a projection as rows (outputs) x cols (inputs), whatever their ggml type.
matrix read_weights(const ggml_tensor * w) {
    if (w->data == nullptr || w->buffer == nullptr) {
        throw std::runtime_error(std::string("XQuant latent modes cannot read ") + w->name + ": its data is not loaded"
                + (w->buffer ? std::string(" (buffer ") + ggml_backend_buffer_name(w->buffer) + ")" : std::string(" (no buffer)")));
    }
    std::vector<uint8_t> raw(ggml_nbytes(w));
    ggml_backend_tensor_get(w, raw.data(), 0, raw.size());
    const int64_t cols = w->ne[0];
    const int64_t rows = w->ne[1];
    std::vector<float> row(cols);
    matrix result(rows * cols);
    const auto * traits = ggml_get_type_traits(w->type);
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t * src = raw.data() + r * w->nb[1];
        if (w->type == GGML_TYPE_F32) {
            std::copy_n((const float *) src, cols, row.begin());
        } else if (traits->to_float) {
            traits->to_float(src, row.data(), cols);
        } else {
            throw std::runtime_error(std::string("XQuant latent modes cannot read weights of type ") + ggml_type_name(w->type));
        }
        std::copy(row.begin(), row.end(), result.begin() + r * cols);
    }
    return result;
}

// Eigen-decomposition of a symmetric n x n matrix by cyclic Jacobi rotations.
// Returns eigenvalues (descending) and eigenvectors as the columns of vectors.
// Each rotation touches rows and columns p and q only: it reads rows p and q (contiguous,
// as a is kept symmetric) and accumulates the eigenvectors as rows of vt (contiguous too).
void symmetric_eigen(matrix a, int n, std::vector<double> & values, matrix & vectors) {
    matrix vt(n * n, 0.0);
    for (int i = 0; i < n; ++i) {
        vt[i * n + i] = 1.0;
    }
    double norm = 0.0;
    for (double x : a) {
        norm += x * x;
    }
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0.0;
        for (int p = 0; p < n; ++p) {
            for (int q = p + 1; q < n; ++q) {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if (off <= 1e-24 * norm) {
            break;
        }
        for (int p = 0; p < n; ++p) {
            for (int q = p + 1; q < n; ++q) {
                const double apq = a[p * n + q];
                if (std::fabs(apq) < 1e-300) {
                    continue;
                }
                const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0);
                const double s = t * c;
                double * row_p = &a[p * n];
                double * row_q = &a[q * n];
                for (int k = 0; k < n; ++k) {
                    if (k == p || k == q) {
                        continue;
                    }
                    const double akp = row_p[k];
                    const double akq = row_q[k];
                    row_p[k] = a[k * n + p] = c * akp - s * akq;
                    row_q[k] = a[k * n + q] = s * akp + c * akq;
                }
                row_p[p] -= t * apq;
                row_q[q] += t * apq;
                row_p[q] = row_q[p] = 0.0;
                double * vt_p = &vt[p * n];
                double * vt_q = &vt[q * n];
                for (int k = 0; k < n; ++k) {
                    const double vkp = vt_p[k];
                    const double vkq = vt_q[k];
                    vt_p[k] = c * vkp - s * vkq;
                    vt_q[k] = s * vkp + c * vkq;
                }
            }
        }
    }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int i, int j) { return a[i * n + i] > a[j * n + j]; });
    values.resize(n);
    vectors.assign(n * n, 0.0);
    for (int c = 0; c < n; ++c) {
        values[c] = a[order[c] * n + order[c]];
        for (int r = 0; r < n; ++r) {
            vectors[r * n + c] = vt[order[c] * n + r];
        }
    }
}

// The left half of W's thin SVD, W = P Σ Qᵀ (rows <= cols), through the eigen-decomposition
// of W Wᵀ: P (rows x rows) and Σ, with 0 for the directions W has no component along.
struct left_svd {
    matrix p;
    std::vector<double> sigma;
};

left_svd left_svd_of(const matrix & w, int rows, int cols) {
    matrix gram(rows * rows, 0.0);
    for (int i = 0; i < rows; ++i) {
        for (int j = i; j < rows; ++j) {
            double sum = 0.0;
            for (int k = 0; k < cols; ++k) {
                sum += w[i * cols + k] * w[j * cols + k];
            }
            gram[i * rows + j] = gram[j * rows + i] = sum;
        }
    }
    left_svd result;
    std::vector<double> values;
    symmetric_eigen(gram, rows, values, result.p);
    const double floor = 1e-12 * std::max(values[0], 1e-300);
    for (double value : values) {
        result.sigma.push_back(value > floor ? std::sqrt(value) : 0.0);
    }
    return result;
}

// Qᵀ = Σ⁻¹ Pᵀ W (rows x cols, orthonormal rows; zero rows where σ is 0)
matrix right_basis(const left_svd & svd, const matrix & w, int rows, int cols) {
    matrix result(rows * cols, 0.0);
    for (int i = 0; i < rows; ++i) {
        if (svd.sigma[i] == 0.0) {
            continue;
        }
        for (int k = 0; k < cols; ++k) {
            double sum = 0.0;
            for (int r = 0; r < rows; ++r) {
                sum += svd.p[r * rows + i] * w[r * cols + k];
            }
            result[i * cols + k] = sum / svd.sigma[i];
        }
    }
    return result;
}

// K (or V) and its latent z = Qᵀ X, both d_kv wide: whiten = Σ⁻¹ Pᵀ (z = whiten · K, since
// K = W X = P Σ Qᵀ X) and rebuild = P Σ (K = rebuild · z)
void whiten_and_rebuild(const matrix & w, int d_kv, int cols, matrix & whiten, matrix & rebuild) {
    const left_svd svd = left_svd_of(w, d_kv, cols);
    whiten.assign((size_t) d_kv * d_kv, 0.0);
    rebuild.assign((size_t) d_kv * d_kv, 0.0);
    for (int i = 0; i < d_kv; ++i) {
        for (int r = 0; r < d_kv; ++r) {
            whiten[i * d_kv + r] = svd.sigma[i] > 0.0 ? svd.p[r * d_kv + i] / svd.sigma[i] : 0.0;
            rebuild[r * d_kv + i] = svd.p[r * d_kv + i] * svd.sigma[i];
        }
    }
}

matrix transpose(const matrix & m, int rows, int cols) {
    matrix t(m.size());
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    return t;
}

matrix stack(const matrix & top, const matrix & bottom) {
    matrix result(top);
    result.insert(result.end(), bottom.begin(), bottom.end());
    return result;
}

// A layer's factors, in layer_tensors' order (their shapes are the tensors')
std::vector<matrix> compute_layer(const llama_layer & layer, bool joint, int d, int d_kv, std::mutex & reading) {
    matrix wk, wv;
    {
        // one read at a time: a backend's tensor_get need not be thread-safe
        std::lock_guard<std::mutex> lock(reading);
        wk = read_weights(layer.wk);
        wv = read_weights(layer.wv);
    }
    if (joint) {
        const matrix w = stack(wk, wv);
        matrix project = right_basis(left_svd_of(w, 2 * d_kv, d), w, 2 * d_kv, d);
        matrix lift = transpose(project, 2 * d_kv, d);
        return { std::move(project), std::move(lift) };
    }
    // the latent from the model's own K and V, so no 2·d_kv x d projection is kept
    matrix whiten_k, whiten_v, rebuild_k, rebuild_v;
    whiten_and_rebuild(wk, d_kv, d, whiten_k, rebuild_k);
    whiten_and_rebuild(wv, d_kv, d, whiten_v, rebuild_v);
    return { std::move(whiten_k), std::move(whiten_v), std::move(rebuild_k), std::move(rebuild_v) };
}

// A layer's factor tensors, in the order compute_layer returns them and the file holds them.
std::vector<ggml_tensor *> layer_tensors(const xq_latent_factors::layer & layer, bool joint) {
    return joint ? std::vector<ggml_tensor *>{ layer.project, layer.lift }
        : std::vector<ggml_tensor *>{ layer.whiten_k, layer.whiten_v, layer.rebuild_k, layer.rebuild_v };
}

// The layers are independent: they are computed on n_threads threads (SmolLM2-135M's joint
// factors took 44 s on one). Each layer's doubles go into its f32 tensors as soon as it is
// done, so only the layers in progress are held in double precision.
void compute_layers(const llama_model & model, xq_latent_factors & factors, int d, int d_kv, int n_threads) {
    const int n_layer = (int) factors.layers.size();
    std::atomic<int> next_layer{ 0 };
    std::mutex reading;
    std::mutex failing;
    std::exception_ptr failure;
    auto work = [&] {
        for (int il = next_layer++; il < n_layer; il = next_layer++) {
            try {
                const std::vector<matrix> computed = compute_layer(model.layers[il], factors.joint, d, d_kv, reading);
                const std::vector<ggml_tensor *> tensors = layer_tensors(factors.layers[il], factors.joint);
                for (size_t p = 0; p < tensors.size(); ++p) {
                    GGML_ASSERT(computed[p].size() == (size_t) ggml_nelements(tensors[p]));
                    std::copy(computed[p].begin(), computed[p].end(), (float *) tensors[p]->data);
                }
            } catch (...) {
                std::lock_guard<std::mutex> lock(failing);
                failure = failure ? failure : std::current_exception();
                next_layer = n_layer; // the factors are unusable: no thread starts another layer
            }
        }
    };
    std::vector<std::thread> helpers;
    for (int t = 1; t < std::min(std::max(n_threads, 1), n_layer); ++t) {
        helpers.emplace_back(work);
    }
    work();
    for (auto & helper : helpers) {
        helper.join();
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
}

struct file_header {
    uint32_t magic, version, joint, n_layer, d, d_kv;
};

// Reads the factors straight into their tensors (host memory); false where the file is missing,
// holds other shapes, or is cut short.
bool read_file(const std::string & path, const file_header & expected, const xq_latent_factors & factors) {
    std::ifstream in(path, std::ios::binary);
    file_header header{};
    if (!in.read((char *) &header, sizeof(header)) || std::memcmp(&header, &expected, sizeof(header)) != 0) {
        return false;
    }
    for (const auto & layer : factors.layers) {
        for (ggml_tensor * tensor : layer_tensors(layer, factors.joint)) {
            if (!in.read((char *) tensor->data, ggml_nbytes(tensor))) {
                return false;
            }
        }
    }
    return true;
}

void write_file(const std::string & path, const file_header & header, const xq_latent_factors & factors) {
    const std::string partial = path + ".partial";
    {
        std::ofstream out(partial, std::ios::binary);
        out.write((const char *) &header, sizeof(header));
        for (const auto & layer : factors.layers) {
            for (const ggml_tensor * tensor : layer_tensors(layer, factors.joint)) {
                out.write((const char *) tensor->data, ggml_nbytes(tensor));
            }
        }
        if (!out) {
            LLAMA_LOG_WARN("%s: could not write %s; the factors will be computed again next time\n", __func__, partial.c_str());
            return;
        }
    }
    std::rename(partial.c_str(), path.c_str());
}

} // namespace

std::shared_ptr<xq_latent_factors> xq_latent_factors_load(const llama_model & model, bool joint, const std::string & path, int n_threads) {
    const auto & hparams = model.hparams;
    const int n_layer = (int) hparams.n_layer();
    const int d = (int) hparams.n_embd;
    const int d_kv = (int) hparams.n_embd_k_gqa(0);
    for (int il = 0; il < n_layer; ++il) {
        if ((int) hparams.n_embd_k_gqa(il) != d_kv || (int) hparams.n_embd_v_gqa(il) != d_kv) {
            throw std::runtime_error("XQuant latent modes need the same K and V width in every layer");
        }
    }
    if (2 * d_kv > d) {
        throw std::runtime_error("XQuant latent modes are for GQA models (2·n_embd_k_gqa < n_embd); this model has " + std::to_string(d_kv) + " of " + std::to_string(d));
    }

    auto factors = std::make_shared<xq_latent_factors>();
    factors->joint = joint;
    const file_header header = { FACTORS_MAGIC, FACTORS_VERSION, joint ? 1u : 0u, (uint32_t) n_layer, (uint32_t) d, (uint32_t) d_kv };

    // the tensors first, in a CPU buffer, so that a file or the computation fills them in place
    const size_t n_tensors = (size_t) n_layer * (joint ? 2 : 4);
    ggml_init_params params = { n_tensors * ggml_tensor_overhead(), nullptr, /*no_alloc*/ true };
    factors->ctx.reset(ggml_init(params));
    const auto new_matrix = [&](int rows, int cols, int il, const char * name) {
        ggml_tensor * tensor = ggml_new_tensor_2d(factors->ctx.get(), GGML_TYPE_F32, cols, rows);
        ggml_format_name(tensor, "xq_%s_%d", name, il);
        return tensor;
    };
    for (int il = 0; il < n_layer; ++il) {
        auto & out = factors->layers.emplace_back();
        if (joint) {
            out.project = new_matrix(2 * d_kv, d, il, "project");
            out.lift = new_matrix(d, 2 * d_kv, il, "lift");
        } else {
            out.whiten_k = new_matrix(d_kv, d_kv, il, "whiten_k");
            out.whiten_v = new_matrix(d_kv, d_kv, il, "whiten_v");
            out.rebuild_k = new_matrix(d_kv, d_kv, il, "rebuild_k");
            out.rebuild_v = new_matrix(d_kv, d_kv, il, "rebuild_v");
        }
    }
    factors->buf.reset(ggml_backend_alloc_ctx_tensors_from_buft(factors->ctx.get(), ggml_backend_cpu_buffer_type()));
    factors->bytes = ggml_backend_buffer_get_size(factors->buf.get());

    factors->from_disk = !path.empty() && read_file(path, header, *factors);
    if (!factors->from_disk) {
        const auto started = std::chrono::steady_clock::now();
        compute_layers(model, *factors, d, d_kv, n_threads);
        factors->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        LLAMA_LOG_INFO("%s: computed the XQuant latent factors in %.3f s\n", __func__, factors->seconds);
        if (!path.empty()) {
            write_file(path, header, *factors);
        }
    }
    return factors;
}
