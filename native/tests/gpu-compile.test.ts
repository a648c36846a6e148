// Compile-only checks of our GPU kernels, so that a syntax error cannot land on a
// machine without a GPU (native/README.md, "GPU kernels"):
// - every .cu file of ours under native/src is compiled (nvcc -c, sm_90) against the
//   patched tree in native/build/source, with a cuBLAS declaration stub
//   (native/tests/cuda-stub) where cuBLAS is not installed; skipped only without nvcc;
// - our CUDA and Metal kernels are compiled by the host C++ compiler through small
//   shims (native/tests/gpu-emulate) and run on the CPU, one host thread per GPU
//   thread, against the row functions (XQ_SET_ROWS, XQ_REBUILD) and against the CPU
//   backend's own op (XQ_ATTN); the patched Metal host sources that are plain C++ are
//   syntax-checked. None of this replaces a GPU run, and nothing here compiles Metal.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { installedBinDir, nativeDir, repoRoot } from "../paths.ts";

const sourceRoot = path.join(nativeDir, "build", "source", "llama.cpp");
const ourRoot = path.join(nativeDir, "src", "llama.cpp");
const ggml = (root: string, ...parts: string[]) => path.join(root, "ggml", ...parts);

function hasCommand(command: string): boolean {
    return spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0;
}

function listFiles(dir: string, suffix: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).filter((name) => name.endsWith(suffix)).map((name) => path.join(dir, name)).sort();
}

function compile(command: string, args: string[]): { status: number | null; output: string } {
    const result = spawnSync(command, args, { encoding: "utf8", cwd: repoRoot });
    return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? String(result.error) : ""}` };
}

// The patched tree must carry our ggml ops and the GPU side of XQ_ATTN (patches 0003 and 0004);
// refresh it when it predates them.
beforeAll(() => {
    const carries = (file: string, text: string) => fs.existsSync(file) && fs.readFileSync(file, "utf8").includes(text);
    if (carries(ggml(sourceRoot, "include", "ggml.h"), "GGML_OP_XQ_ATTN")
        && carries(ggml(sourceRoot, "src", "ggml-metal", "ggml-metal-impl.h"), "ggml_metal_kargs_xq_attn")) return;
    const result = spawnSync(process.execPath, ["--import", "tsx", path.join(nativeDir, "build.ts"), "--sources-only"], { encoding: "utf8", cwd: repoRoot });
    if (result.status !== 0) throw new Error(`preparing native/build/source failed:\n${result.stdout}${result.stderr}`);
}, 300_000);

// our headers first, so that the files under test are the ones in native/src
function includes(...dirs: string[]): string[] {
    return dirs.flatMap((dir) => ["-I", dir]);
}

const cudaFiles = listFiles(ggml(ourRoot, "src", "ggml-cuda"), ".cu");
const hasNvcc = hasCommand("nvcc");
if (!hasNvcc) console.warn("[gpu-compile] nvcc not found: skipping the CUDA compile check of native/src/llama.cpp/ggml/src/ggml-cuda/*.cu");

describe.skipIf(!hasNvcc)("CUDA kernels compile (nvcc -c, sm_90)", () => {
    it("has kernels to check", () => {
        expect(cudaFiles.length).toBeGreaterThan(0);
    });

    it.each(cudaFiles.map((file) => path.basename(file)))("%s", (name) => {
        const out = path.join(os.tmpdir(), `xq-gpu-compile-${process.pid}-${name}.o`);
        // the stub goes last: a real cublas_v2.h on the include path wins
        const result = compile("nvcc", ["-c", "-std=c++17", "-arch=sm_90", "-O1", "-Werror", "all-warnings",
            ...includes(ggml(ourRoot, "include"), ggml(ourRoot, "src", "ggml-cuda"), ggml(sourceRoot, "include"), ggml(sourceRoot, "src"), ggml(sourceRoot, "src", "ggml-cuda")),
            "-isystem", path.join(nativeDir, "tests", "cuda-stub"),
            path.join(ggml(ourRoot, "src", "ggml-cuda"), name), "-o", out]);
        fs.rmSync(out, { force: true });
        expect(result.output).toBe("");
        expect(result.status).toBe(0);
    }, 300_000);
});

const cxx = process.env.CXX ?? "c++";

interface EmulationSummary {
    cases: number;
    setRowsRowMismatches: number;
    loadMaxAbs: number;
    rebuildNmseMax: number;
}

interface AttnEmulationSummary {
    cases: number;
    refused: number;
    splitsMax: number;
    supportsOpMismatches: number;
    nmseMaxF32: number;
    nmseMaxF16: number;
    nmseMaxConverted: number;
    paddedMaxAbs: number;
    seconds: number;
}

// Builds native/tests/gpu-emulate/<program>.cpp around one backend's kernels
// (kernels.inc) and runs them on the CPU, one host thread per GPU thread. The programs
// link the installed ggml; the XQ_ATTN one loads its CPU backend from there.
function emulate<T>(program: string, backend: "cuda" | "metal", kernels: string): T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xq-emulate-${backend}-`));
    try {
        fs.writeFileSync(path.join(dir, "kernels.inc"), kernels);
        const exe = path.join(dir, program);
        const built = compile(cxx, ["-std=c++20", "-O1", "-pthread", "-Wall", "-Wno-attributes", "-Wno-unknown-pragmas", "-Werror",
            ...(backend === "cuda" ? ["-DXQ_EMULATE_CUDA"] : []),
            ...includes(dir, path.join(nativeDir, "tests", "gpu-emulate"), ggml(sourceRoot, "src", "ggml-metal"), ggml(ourRoot, "include"), ggml(sourceRoot, "include")),
            path.join(nativeDir, "tests", "gpu-emulate", `${program}.cpp`), "-o", exe,
            "-L", installedBinDir, "-lggml", "-lggml-base", `-Wl,-rpath,${installedBinDir}`]);
        expect(built.output).toBe("");
        expect(built.status).toBe(0);
        const ran = spawnSync(exe, [installedBinDir], { encoding: "utf8" });
        expect(ran.status, ran.stderr).toBe(0);
        return JSON.parse(ran.stdout) as T;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const readCuda = (...names: string[]) => names.map((name) => fs.readFileSync(path.join(ggml(ourRoot, "src", "ggml-cuda"), name), "utf8")).join("\n");

// kernels/xquant.metal as host C++ for the Metal shim
function metalForHost(): string {
    return fs.readFileSync(path.join(ggml(ourRoot, "src", "ggml-metal", "kernels"), "xquant.metal"), "utf8")
        .replace('#include "common.h"', '#include "metal-shim.h"')
        // argument attributes ([[thread_index_in_simdgroup]], [[threadgroup(0)]]) mean nothing to C++
        .replace(/\[\[[a-z_]+(\([0-9]+\))?\]\]/g, "")
        // threadgroup arrays are shared by the threads of a threadgroup: static on the host
        .replace(/^ {4}threadgroup (float|int) /gm, "    static $1 ");
}

// Same bytes as the row functions (the kernels' Hadamard stages run in the CPU's
// order), loads equal to float rounding (the CPU folds the 1/sqrt(group) into the
// scale and min, the kernels apply it after the rotation), and rebuilds equal to
// W·X̂ up to float sums.
function expectMatchesRowFunctions(summary: EmulationSummary): void {
    expect(summary.cases).toBe(30);
    expect(summary.setRowsRowMismatches).toBe(0);
    expect(summary.loadMaxAbs).toBeLessThan(1e-5);
    expect(summary.rebuildNmseMax).toBeLessThan(1e-10);
}

// XQ_ATTN against the CPU backend's op on the same tensors, 16 cases (decode and 5-token
// ubatches, absorbed and plain V, GQA, NORMAL/NEOX, YaRN, bias/norm/rope factors, bits
// 2/3/4/8/16, groups 128/64/32, 3-7 tiles in up to 4 (CUDA) or 7 (Metal) splits). f32
// weights: only the summation order differs (measured 8.2e-12). f16 weights: the CPU
// rounds X̂ to f16 for its f16 dot products, the kernels multiply the f32 X̂ (measured
// 5.4e-8; 2.8e-11 at 16 bits, where X̂ is already f16 but for the exact rows).
// Converted weights (Q4_0, Q4_K wk with Q6_K wv, Q8_0, f16 wk with f32 wv): CUDA reads
// f16 copies; the CPU multiplies dequantized f32 panels (measured 9.0e-8), or, in the
// x64 variant, X̂ rounded to Q8 by the type's own dot product (3.2e-5). Metal converts no
// weights: its supports_op refuses those 4 cases.
function expectMatchesCpuAttention(summary: AttnEmulationSummary, backend: "cuda" | "metal"): void {
    const converted = 4;
    expect(summary.cases + summary.refused).toBe(16);
    expect(summary.refused).toBe(backend === "cuda" ? 0 : converted);
    expect(summary.splitsMax).toBeGreaterThan(1);
    // supports_op takes every case it should, and refuses the cross-layer flags and an unconvertible weight
    expect(summary.supportsOpMismatches).toBe(0);
    expect(summary.nmseMaxF32).toBeLessThan(1e-10);
    expect(summary.nmseMaxF16).toBeLessThan(1e-6);
    if (backend === "cuda") expect(summary.nmseMaxConverted).toBeLessThan(1e-4);
    else expect(summary.nmseMaxConverted).toBe(0);
    // a token that sees no cell gets zeros, as on the CPU
    expect(summary.paddedMaxAbs).toBe(0);
}

describe("GPU kernels, emulated on the CPU (their code, not their compilers)", () => {
    it("ggml-cuda/xquant-kernels.cuh matches the row functions", () => {
        expectMatchesRowFunctions(emulate<EmulationSummary>("emulate-xquant", "cuda", readCuda("xquant-kernels.cuh")));
    }, 600_000);

    it("ggml-metal/kernels/xquant.metal matches the row functions", () => {
        expectMatchesRowFunctions(emulate<EmulationSummary>("emulate-xquant", "metal", metalForHost()));
    }, 600_000);

    it("ggml-cuda/xquant-attn-kernels.cuh matches the CPU's XQ_ATTN", () => {
        expectMatchesCpuAttention(emulate<AttnEmulationSummary>("emulate-xquant-attn", "cuda", readCuda("xquant-kernels.cuh", "xquant-attn-kernels.cuh")), "cuda");
    }, 600_000);

    it("ggml-metal/kernels/xquant.metal's XQ_ATTN matches the CPU's", () => {
        expectMatchesCpuAttention(emulate<AttnEmulationSummary>("emulate-xquant-attn", "metal", metalForHost()), "metal");
    }, 600_000);
});

describe("Metal host sources (syntax only; Metal itself compiles on a Mac)", () => {
    it.each(["ggml-metal-ops.cpp", "ggml-metal-device.cpp", "ggml-metal.cpp"])("patched host source %s is valid C++", (name) => {
        // ggml-metal.cpp uses std::unique_ptr without <memory>, which Apple's libc++ brings in anyway
        const result = compile(cxx, ["-std=c++17", "-fsyntax-only", "-include", "memory",
            ...includes(ggml(ourRoot, "include"), ggml(sourceRoot, "include"), ggml(sourceRoot, "src"), ggml(sourceRoot, "src", "ggml-metal")),
            path.join(ggml(sourceRoot, "src", "ggml-metal"), name)]);
        expect(result.output).toBe("");
        expect(result.status).toBe(0);
    });
});
