#!/usr/bin/env bash
# GPU check of the XQuant kernels (native/README.md, "GPU kernels"): build the CUDA
# backend and test-backend-ops, compare our ops (XQ_SET_ROWS, XQ_REBUILD, XQ_ATTN)
# with the CPU backend, time them, and run `npm run bench` on the fixtures and a
# random d = 2048 model with --gpu. Sized to finish in about 8 minutes on one
# NVIDIA GPU of compute capability 9.0 (H100, H200); later steps are skipped when
# the time budget runs out.
#
# How to run it on a GPU machine:
#   1. here (a machine with Node.js and this repository set up):
#        bash native/gpu-check.sh --pack
#      writes native/build/gpu-carry/ (the patched llama.cpp tree, ~10 MB), so that
#      a GPU machine without Node.js can still build test-backend-ops;
#   2. copy the repository there together with native/build/gpu-carry/ and
#      fixtures/models/ (the fixture models the bench rows use);
#   3. there:
#        bash native/gpu-check.sh
#      Results (summary.txt, the logs, bench-*.json) go to $OUT, or to
#      native/build/gpu-check when OUT is unset.
# Where the GPU machine has Node.js and node_modules, the script builds the CUDA addon
# with `npm run build:native -- --cuda --install` instead and also runs the bench.
#
# Environment: CMAKE_CUDA_ARCHITECTURES (default 90), XQ_BUILD_JOBS (default nproc),
# XQ_GPU_CHECK_BUDGET_S (default 450: later steps are skipped when it runs out).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
carry=$repo/native/build/gpu-carry

if [[ "${1:-}" == "--pack" ]]; then
    set -e
    npx tsx native/build.ts --sources-only
    mkdir -p "$carry"
    # the tree minus what a build does not read (docs, vocab files but the one the
    # random bench model borrows); ~10 MB compressed
    tar -C native/build -cJf "$carry/source.tar.xz" \
        --exclude=source/.git --exclude=source/llama.cpp/docs --exclude=source/llama.cpp/media \
        --exclude='source/llama.cpp/models/*' \
        source
    cp native/build/source/llama.cpp/models/ggml-vocab-llama-spm.gguf "$carry/"
    ls -la "$carry"
    exit 0
fi

OUT=${OUT:-$repo/native/build/gpu-check}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: > "$summary"
budget=${XQ_GPU_CHECK_BUDGET_S:-450}
jobs=${XQ_BUILD_JOBS:-$(nproc)}
export CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES:-90}
export XQ_BUILD_JOBS=$jobs
export XQ_CACHE_DIR=${XQ_CACHE_DIR:-$repo/native/build/cache}

note() { echo "[gpu-check] $*" | tee -a "$summary"; }
left() { echo $((budget - SECONDS)); }
# step NAME SECONDS LOG COMMAND...: runs within the remaining budget
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local remaining
    remaining=$(left)
    if (( remaining < 20 )); then
        note "$name: skipped, the time budget is spent"
        return 1
    fi
    (( limit > remaining )) && limit=$remaining
    local started=$SECONDS
    timeout "$limit" "$@" >> "$log" 2>&1
    local rc=$?
    note "$name: exit $rc after $((SECONDS - started)) s (log: $(basename "$log"))"
    return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$summary"
nvcc --version | tail -1 | sed 's/^/nvcc: /' | tee -a "$summary"

# ggml-cuda links cuBLAS. Where the toolkit lacks it but Python's nvidia-cublas wheel
# has it (PyTorch images), point the compiler, CMake and the loader there.
cuda_include=$(dirname "$(command -v nvcc)")/../include
if [[ ! -f "$cuda_include/cublas_v2.h" ]]; then
    cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))' 2>/dev/null || true)
    if [[ -n "$cublas" && -f "$cublas/include/cublas_v2.h" ]]; then
        links=$repo/native/build/cublas-lib
        mkdir -p "$links"
        for lib in "$cublas"/lib/libcublas*.so.*; do
            ln -sf "$lib" "$links/$(basename "$lib" | sed 's/\.so\..*/.so/')"
        done
        export CPATH=$cublas/include${CPATH:+:$CPATH}
        export CMAKE_INCLUDE_PATH=$cublas/include CMAKE_LIBRARY_PATH=$links
        export LIBRARY_PATH=$links${LIBRARY_PATH:+:$LIBRARY_PATH} LD_LIBRARY_PATH=$cublas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        note "cuBLAS from $cublas"
    else
        note "cuBLAS not found (neither in the CUDA toolkit nor as Python's nvidia-cublas): the CUDA build will fail"
    fi
fi

# 1. the patched tree: from build.ts where Node.js is here, else from the carried tarball
if command -v node > /dev/null && [[ -d node_modules/node-llama-cpp ]]; then
    step "build (npm run build:native -- --cuda --install)" 330 "$OUT/build.log" \
        npm run build:native -- --cuda --install
    build_dir=native/build/out-cuda
    cmake_source=native/build/source
else
    note "Node.js or node_modules missing: building test-backend-ops from native/build/gpu-carry (no addon, no bench)"
    if [[ ! -f "$carry/source.tar.xz" ]]; then
        note "native/build/gpu-carry/source.tar.xz is missing: run native/gpu-check.sh --pack first and carry native/build/gpu-carry"
        exit 1
    fi
    rm -rf native/build/source && mkdir -p native/build && tar -C native/build -xJf "$carry/source.tar.xz"
    build_dir=native/build/out-cuda-tests
    cmake_source=native/build/source/llama.cpp
fi

# 2. test-backend-ops in the same build folder (the ggml libraries are shared)
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
step "configure test-backend-ops" 120 "$OUT/build.log" \
    cmake -S "$cmake_source" -B "$build_dir" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CMAKE_CUDA_ARCHITECTURES" -DGGML_NATIVE=ON \
        -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=OFF
step "build test-backend-ops" 330 "$OUT/build.log" \
    cmake --build "$build_dir" --parallel "$jobs" --target test-backend-ops
tbo=$build_dir/bin/test-backend-ops

# 3. our ops on CUDA against the CPU backend, then their timings
if [[ -x "$tbo" ]]; then
    step "test-backend-ops -o XQ_SET_ROWS,XQ_REBUILD,XQ_ATTN (CUDA0 vs CPU)" 120 "$OUT/backend-ops.log" \
        "$tbo" test -b CUDA0 -o XQ_SET_ROWS,XQ_REBUILD,XQ_ATTN
    grep -E "tests passed|Backend .*: (OK|FAIL)|FAIL" "$OUT/backend-ops.log" | tail -5 | sed 's/^/  /' | tee -a "$summary"
    step "test-backend-ops perf -o XQ_REBUILD,XQ_ATTN" 60 "$OUT/backend-ops-perf.log" \
        "$tbo" perf -b CUDA0 -o XQ_REBUILD,XQ_ATTN
else
    note "test-backend-ops was not built: see build.log"
fi

# 4. decode speed by cache mode (src-main/cli/bench.ts)
if ! grep -q '"bench"' package.json || [[ ! -f src-main/cli/bench.ts ]]; then
    note "bench: skipped, this tree has no \`npm run bench\` (src-main/cli/bench.ts) yet"
elif ! command -v node > /dev/null; then
    note "bench: skipped, Node.js is not installed on this machine"
else
    big=$repo/native/build/gpu-check-mha-d2048.gguf
    if [[ ! -f "$big" ]]; then
        # a random llama MHA model of d = 2048, 16 layers, 32 heads (f16, ~1.4 GB), 32k context
        vocab=native/build/source/llama.cpp/models/ggml-vocab-llama-spm.gguf
        [[ -f "$vocab" ]] || vocab=$carry/ggml-vocab-llama-spm.gguf
        python3 - "$big" "$vocab" > "$OUT/bench-model.json" << 'EOF'
import json, sys
out, vocab = sys.argv[1], sys.argv[2]
print(json.dumps({"ggufPy": "native/build/source/llama.cpp/gguf-py", "vocabGguf": vocab, "keepTokenIds": list(range(8192)),
                  "out": out, "name": "mha-random-d2048", "nEmbd": 2048, "nLayer": 16, "nHead": 32, "nHeadKv": 32,
                  "nFf": 5632, "nCtx": 32768, "dtype": "f16", "seed": 7, "logitScale": 4}))
EOF
        step "make the d=2048 16-layer random MHA model" 90 "$OUT/bench.log" \
            python3 fixtures/gguf_tool.py make "$OUT/bench-model.json"
    fi
    # the Q4_0 fixture: quantized weights, which XQ_ATTN on CUDA reads through f16 copies
    for model in fixtures/models/mha-trained.gguf "$big" fixtures/models/mha-trained-q4_0.gguf; do
        if [[ ! -f "$model" ]]; then
            note "bench: $model is missing (carry fixtures/models)"
            continue
        fi
        # the big model gives the long-context rows: kv-f16, xq-4 and xqcl-2 at 4k, 16k and 32k
        modes=kv-f16,kv-q4_0,xq-4,xqcl-2 depths=1024,4096,16384
        [[ "$model" == "$big" ]] && modes=kv-f16,xq-4,xqcl-2 depths=4096,16384,32768
        [[ "$model" == *q4_0* ]] && modes=kv-f16,xq-4,xq-4+gemm
        step "bench $(basename "$model")" 150 "$OUT/bench.log" \
            npm run bench -- --model "$model" --modes "$modes" --depths "$depths" --gpu \
                --json "$OUT/bench-$(basename "$model" .gguf).json"
    done
fi

note "done in $SECONDS s; results in $OUT"
