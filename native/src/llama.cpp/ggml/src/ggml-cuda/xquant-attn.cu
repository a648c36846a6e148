// CUDA host side of GGML_OP_XQ_ATTN: supports_op and the two launches (the kernels
// and their plan are in xquant-attn-kernels.cuh; the CPU kernel is
// ggml-cpu/xquant-attn.cpp).
#include "xquant.cuh"
#include "ggml-xquant.h"
#include "xquant-kernels.cuh"
#include "xquant-attn-kernels.cuh"
#include "convert.cuh"

static bool xq_attn_converts_to_f16(const ggml_type type) {
    return ggml_get_to_fp16_cuda(type) != nullptr;
}

bool ggml_cuda_xq_attn_supports_op(const ggml_tensor * op) {
    return ggml_xq_attn_gpu_supported(op, XQ_ATTN_MAX_HEAD_DIM, XQ_ATTN_ROWS, xq_attn_converts_to_f16);
}

template <int G, typename TW>
static void xq_attn_launch(const xq_attn_plan & plan, ggml_tensor * dst, cudaStream_t stream) {
    const dim3 grid(plan.grid_x, plan.n_splits);
    k_xq_attn<G, TW><<<grid, XQ_ATTN_THREADS, 0, stream>>>(plan.args);
    k_xq_attn_merge<<<plan.args.n_tokens * plan.args.n_head, XQ_ATTN_THREADS, 0, stream>>>(
        plan.args, plan.n_splits, (char *) dst->data, dst->nb[1], dst->nb[2]);
}

template <int G>
static void xq_attn_launch_group(const xq_attn_plan & plan, ggml_tensor * dst, cudaStream_t stream) {
    if (plan.f16_weights) {
        xq_attn_launch<G, half>(plan, dst, stream);
    } else {
        xq_attn_launch<G, float>(plan, dst, stream);
    }
}

void ggml_cuda_op_xq_attn(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    if (ggml_nelements(dst) == 0) {
        return;
    }
    // two blocks per SM keep the device busy while a decode step has few kv heads
    xq_attn_plan plan = xq_attn_plan_of(dst, 2 * ggml_cuda_info().devices[ctx.device].nsm);
    // the splits' partial results: O(n_splits * n_tokens * n_head * out_width), whatever n_kv
    ggml_cuda_pool_alloc<float> partial(ctx.pool(), plan.partial_floats);
    ggml_cuda_pool_alloc<float> max_sum(ctx.pool(), plan.max_sum_floats);
    plan.args.partial = partial.get();
    plan.args.max_sum = max_sum.get();
    cudaStream_t stream = ctx.stream();
    // weights the kernel does not read as they are (a quantized GGUF's) go through ggml's own
    // converters into f16 copies: d x d_kv halves each, whatever n_kv
    ggml_cuda_pool_alloc<half> wk_f16(ctx.pool()), wv_f16(ctx.pool());
    const auto f16_copy = [&](const ggml_tensor * w, ggml_cuda_pool_alloc<half> & copy) {
        copy.alloc(ggml_nelements(w));
        ggml_get_to_fp16_cuda(w->type)(w->data, copy.get(), ggml_nelements(w), stream);
        return (const void *) copy.get();
    };
    const ggml_tensor * wk = dst->src[2];
    const ggml_tensor * wv = plan.args.wv ? dst->src[GGML_XQ_ATTN_FIRST_OPTIONAL] : nullptr;
    if (xq_attn_converts(wk, plan.f16_weights)) {
        plan.args.wk = f16_copy(wk, wk_f16);
    }
    if (xq_attn_converts(wv, plan.f16_weights)) {
        plan.args.wv = f16_copy(wv, wv_f16);
    }
    switch (plan.group) {
        case 128: xq_attn_launch_group<128>(plan, dst, stream); break;
        case 64:  xq_attn_launch_group<64> (plan, dst, stream); break;
        case 32:  xq_attn_launch_group<32> (plan, dst, stream); break;
        default:  GGML_ABORT("XQ_ATTN: row width %d has no group size", plan.args.width);
    }
    CUDA_CHECK(cudaGetLastError());
}
