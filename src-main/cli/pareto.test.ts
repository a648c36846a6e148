import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, heldOutTextPath } from "../../fixtures/fixtures.ts";
import { evaluateModes } from "../engine/quality.ts";
import { isOnOrBelowLine, kvLine, paretoSvg } from "./pareto.ts";
import { svgToPng } from "./render-png.ts";

describe("the eval Pareto chart", () => {
    it("puts XQuant points on or below the kv-q8_0/kv-q4_0 line and draws it as a PNG", async () => {
        const rows = await evaluateModes({
            model: fixturePath("mha-trained"), text: heldOutTextPath, modes: ["kv-f16", "kv-q8_0", "kv-q4_0", "xq-4", "xqcl-3", "xqcl-2"],
            contextSize: 512, chunks: 2, baseLayers: -1, threads: 2,
        });
        const line = kvLine(rows)!;
        expect(line.slope).toBeLessThan(0);
        for (const row of rows.filter((r) => r.mode.startsWith("xq"))) expect(isOnOrBelowLine(line, row), row.mode).toBe(true);

        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xq-plot-")), "pareto.png");
        await svgToPng(paretoSvg(rows, "test"), file);
        const png = fs.readFileSync(file);
        expect(png.subarray(1, 4).toString()).toBe("PNG");
        expect(png.length).toBeGreaterThan(5000);
    });
});
