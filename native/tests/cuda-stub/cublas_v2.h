// Compile-check stub: declares the few cuBLAS names that ggml-cuda's common.cuh
// uses, so that our .cu files can be compiled (never linked) on a machine with
// nvcc but without cuBLAS (native/tests/cuda-compile.test.ts). Not for builds.
#pragma once

#include <cstddef>

typedef struct cublasContext * cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TENSOR_OP_MATH = 1, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef enum { CUBLAS_COMPUTE_16F = 64, CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;

const char * cublasGetStatusString(cublasStatus_t status);
cublasStatus_t cublasCreate(cublasHandle_t * handle);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void * workspace, size_t size);

// the rest of what ggml-cuda.cu calls, loosely typed: enough to compile the
// patched ggml-cuda.cu by hand (see native/README.md), not to check cuBLAS calls
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;
cublasStatus_t cublasDestroy(cublasHandle_t handle);
template <class... Args> cublasStatus_t cublasSgemm(Args...);
template <class... Args> cublasStatus_t cublasGemmEx(Args...);
template <class... Args> cublasStatus_t cublasGemmBatchedEx(Args...);
template <class... Args> cublasStatus_t cublasGemmStridedBatchedEx(Args...);
