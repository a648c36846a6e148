import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { fixturePath, heldOutTextPath } from "../../fixtures/fixtures.ts";
import { repoRoot } from "../../native/paths.ts";
import { evaluateModes } from "../engine/quality.ts";

describe("npm run eval", () => {
    it("measures PPL, KLD and bytes per mode on the trained MHA fixture", async () => {
        const rows = await evaluateModes({
            model: fixturePath("mha-trained"), text: heldOutTextPath, modes: ["kv-f16", "kv-q4_0", "xq-f16", "xq-8", "xq-4", "xq-2"],
            contextSize: 512, chunks: 2, baseLayers: -1, threads: 2,
        });
        const byMode = Object.fromEntries(rows.map((row) => [row.mode, row]));
        expect(rows.map((row) => row.mode)).toEqual(["kv-f16", "kv-q4_0", "xq-f16", "xq-8", "xq-4", "xq-2"]);
        expect(byMode["kv-f16"]!.kld).toBe(0);
        expect(byMode["xq-f16"]!.kld).toBeLessThan(1e-6);
        for (const row of rows) {
            expect(Number.isFinite(row.ppl) && row.ppl > 1).toBe(true);
            expect(row.kld).toBeGreaterThanOrEqual(0);
        }
        // measured bytes: X rows of 4.25 and 2.25 bits against 2 x 16-bit K/V rows
        expect(byMode["xq-4"]!.savingVsF16).toBeCloseTo(32 / 4.25, 6);
        expect(byMode["xq-2"]!.savingVsF16).toBeCloseTo(32 / 2.25, 6);
        expect(byMode["xq-4"]!.bitsPerElement).toBeCloseTo(4.25, 6);
        expect(byMode["xq-4"]!.bytesPerToken * 2).toBeLessThan(byMode["kv-q4_0"]!.bytesPerToken);
    });

    it.each([
        [["--model", "/nonexistent.gguf", "--text", "README.md"], /--model must name a GGUF file/],
        [["--model", "README.md", "--text", "README.md", "--modes", "kv-f16,xq-7"], /unknown modes: xq-7/],
    ])("rejects bad arguments with a usage error: %j", (args, message) => {
        const result = spawnSync("npx", ["tsx", "src-main/cli/eval.ts", ...args], { cwd: repoRoot, encoding: "utf8" });
        expect(result.status).toBe(2);
        expect(result.stderr).toMatch(message);
    });

    it("reports a model file that is not a GGUF as an eval failure, not a crash", async () => {
        await expect(evaluateModes({
            model: heldOutTextPath, text: heldOutTextPath, modes: ["kv-f16"], contextSize: 512, chunks: 1, baseLayers: -1, threads: 1,
        })).rejects.toThrow(/xquant-eval failed \(2\)/);
    });
});
