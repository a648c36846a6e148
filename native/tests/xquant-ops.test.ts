// The XQuant ggml ops (GGML_OP_XQ_SET_ROWS, GGML_OP_XQ_REBUILD) on the CPU backend
// equal the X-cache's row functions and mul_mat, through
// native/tests/test-xquant-ops.cpp: switching xquant-graph.cpp to them changes
// nothing on CPU. The GPU backends are compared with this CPU reference by
// llama.cpp's test-backend-ops (native/gpu-check.sh).
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { toolPath } from "../paths.ts";

describe("XQuant ggml ops on CPU", () => {
    it("store the row functions' bytes, load their values, and rebuild as mul_mat(W, X̂) + b", () => {
        const result = spawnSync(toolPath("xquant-ops-tests"), [], { encoding: "utf8" });
        expect(result.status, result.stderr).toBe(0);
        const summary = JSON.parse(result.stdout) as { cases: number; setRowsByteMismatches: number; loadValueMismatches: number; rebuildNmseMax: number };
        expect(summary.cases).toBe(60);
        expect(summary.setRowsByteMismatches).toBe(0);
        expect(summary.loadValueMismatches).toBe(0);
        expect(summary.rebuildNmseMax).toBeLessThan(1e-10);
    });
});
