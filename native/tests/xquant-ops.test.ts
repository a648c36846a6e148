// The XQuant ggml ops (GGML_OP_XQ_SET_ROWS, GGML_OP_XQ_REBUILD, XQuant-CL's layer
// lists, XQ_ATTN's two forms of masking) on the CPU backend equal the X-cache's row
// functions, mul_mat and each other, through
// native/tests/test-xquant-ops.cpp: switching xquant-graph.cpp to them changes
// nothing on CPU. They run under every CPU variant this machine can run (the
// baseline x86-64 one included), so a machine with AVX-512 also tests the code an
// AVX2-only CPU runs, and the other way round. The GPU backends are compared with
// this CPU reference by llama.cpp's test-backend-ops (native/gpu-check.sh).
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { cpuVariants } from "../cpu-variants.ts";
import { toolPath } from "../paths.ts";

interface OpsSummary {
    cases: number;
    setRowsByteMismatches: number;
    loadValueMismatches: number;
    rebuildErrorF32: number;
    rebuildErrorF16: number;
    layerListCases: number;
    layerListMismatches: number;
    visibilityCases: number;
    visibilityMismatches: number;
    visibilityPairsSeen: number;
    liftedListCases: number;
    liftedListError: number;
    cpuFeatures: string[];
}

function runOps(variant?: string): { status: number | null; summary?: OpsSummary; stderr: string } {
    const env = { ...process.env };
    if (variant) env.XQ_CPU_VARIANT = variant;
    else delete env.XQ_CPU_VARIANT;
    const result = spawnSync(toolPath("xquant-ops-tests"), [], { encoding: "utf8", env });
    return { status: result.status, stderr: result.stderr, summary: result.status === 0 ? JSON.parse(result.stdout) as OpsSummary : undefined };
}

// Any summation order is within n·u·Σ|w·x̂| of the exact sum (u = 2^-24 for f32), and the
// fused rebuild and mul_mat each add n products and a bias: 2·(n+1)·u relative to
// Σ|w·x̂| + |b|. With f16 weights ggml may first round x̂ to f16 (vec_dot_type), which
// costs each side up to 2^-11 of every term. Accumulation is in f32 on x86 (an f16
// accumulator, as on ARM with FP16 vector arithmetic, would need n·2^-11).
const widest = 256;
const f32Bound = 2 * (widest + 1) * 2 ** -24;
const f16Bound = 2 * 2 ** -11 + f32Bound;

const variants = cpuVariants();
const runs = new Map<string, ReturnType<typeof runOps>>();

describe("XQuant ggml ops on CPU", () => {
    beforeAll(() => {
        for (const variant of variants) runs.set(variant.tag, runOps(variant.tag));
    });

    it.each(variants)("store the row functions' bytes, load their values, and rebuild as mul_mat(W, X̂) + b under the $tag variant", (variant) => {
        const run = runs.get(variant.tag)!;
        if (!variant.runsHere) {
            // this CPU (or its OS) cannot run the variant: the loader must refuse it
            expect(run.status).toBe(2);
            expect(run.stderr).toMatch(/no CPU backend/);
            return;
        }
        expect(run.status, run.stderr).toBe(0);
        const summary = run.summary!;
        expect(summary.cases).toBe(60);
        expect(summary.setRowsByteMismatches).toBe(0);
        expect(summary.loadValueMismatches).toBe(0);
        expect(summary.rebuildErrorF32).toBeLessThan(f32Bound);
        expect(summary.rebuildErrorF16).toBeLessThan(f16Bound);
        expect(summary.layerListCases).toBe(15);
        expect(summary.layerListMismatches).toBe(0);
        expect(summary.visibilityCases).toBe(6);
        expect(summary.visibilityMismatches).toBe(0);
        expect(summary.visibilityPairsSeen).toBeGreaterThan(1000);
        // GQA-CL's lifted list against the GEMM path's chain: f16 latents, float rounding only
        expect(summary.liftedListCases).toBe(3);
        expect(summary.liftedListError).toBeLessThan(1e-3);
    });

    it("runs the baseline x86-64 variant, and by default loads the best variant this CPU runs", () => {
        if (process.arch !== "x64") return;
        const baseline = runs.get("x64")!;
        expect(baseline.status, baseline.stderr).toBe(0);
        expect(baseline.summary!.cpuFeatures).not.toContain("AVX2");
        const best = variants.filter((variant) => variant.runsHere).at(-1)!;
        const chosen = runOps();
        expect(chosen.status, chosen.stderr).toBe(0);
        expect(chosen.summary!.cpuFeatures).toEqual(runs.get(best.tag)!.summary!.cpuFeatures);
    });
});
