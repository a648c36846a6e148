// Exactness of the X-cache against llama.cpp's f16 KV cache, on the random
// fixture models, through native/tests/test-xquant.cpp (the C API, no JS in between).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixturePath, quantizedFixtures, renamedArchitectureModel, type FixtureName } from "../../fixtures/fixtures.ts";
import { cpuVariants } from "../cpu-variants.ts";
import { toolPath } from "../paths.ts";

// cpuVariant: the CPU backend to load (XQ_CPU_VARIANT); by default the best one this CPU runs
function nativeOn<T>(cpuVariant: string | undefined, ...args: string[]): T {
    const env = cpuVariant ? { ...process.env, XQ_CPU_VARIANT: cpuVariant } : process.env;
    const result = spawnSync(toolPath("xquant-native-tests"), args, { encoding: "utf8", env });
    if (result.status !== 0) throw new Error(`xquant-native-tests ${args.join(" ")} failed (${result.status}):\n${result.stderr}`);
    return JSON.parse(result.stdout) as T;
}

function native<T>(...args: string[]): T {
    return nativeOn<T>(undefined, ...args);
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
    it.each(["xq-4", "xqcl-2"])("%s: V absorption gives the plain rebuild's logits within NMSE 1e-5", (mode) => {
        const result = native<Comparison>("compare", model, mode, "0", "1", `${mode}+plain`);
        expect(result.nmseMax).toBeLessThan(1e-5);
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
    it.each(["gqa-trained-q4_0", "gqa-trained-q4_k"] as const)("%s: xqlcl-f16 follows kv-f16, and xql-4 survives a context shift and seq_rm", (name) => {
        const model = fixturePath(name);
        const result = nativeOn<Comparison>(cpuVariant, "compare", model, "xqlcl-f16", "0", "1");
        expect(result.sameTokens).toBe(256);
        expect(result.nmseMax).toBeLessThan(quantizedNmseBound);
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
