// readGgufMetadata on files that are not whole GGUFs: each is refused at once with a
// typed model-invalid error (node-llama-cpp's own reader never returns on some of them).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import { readGgufMetadata } from "./models.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-models-"));
const model = fs.readFileSync(fixturePath("mha-random-f16"));

function file(name: string, bytes: Buffer | string): string {
    const filePath = path.join(dir, name);
    fs.writeFileSync(filePath, bytes);
    return filePath;
}

describe("readGgufMetadata", () => {
    it.each([
        ["a GGUF magic followed by text (an unknown version: node-llama-cpp's reader hangs on it)", "GGUF damaged", /^x\.gguf is not a valid GGUF file: its version 1835099168 is not one of 1, 2, 3$/],
        ["a version of 4", Buffer.concat([Buffer.from("GGUF"), Buffer.from([4, 0, 0, 0]), model.subarray(8)]), /its version 4 is not one of 1, 2, 3$/],
        ["fewer bytes than the magic and version", "GGU", /does not start with the GGUF magic and version$/],
        ["another format", Buffer.alloc(64, 1), /does not start with the GGUF magic and version$/],
        ["a header cut before its first key", model.subarray(0, 30), /^x\.gguf is not a valid GGUF file: /],
        ["a header cut in its metadata", model.subarray(0, 100), /^x\.gguf is truncated: it has 100 bytes/],
    ])("refuses %s with model-invalid, at once", async (_what, bytes, message) => {
        const started = performance.now();
        await expect(readGgufMetadata(file("x.gguf", bytes))).rejects.toMatchObject({ code: "model-invalid", message: expect.stringMatching(message) });
        expect(performance.now() - started).toBeLessThan(2000);
    });

    it("reads a whole one", async () => {
        expect(await readGgufMetadata(file("whole.gguf", model))).toMatchObject({ architecture: "llama", sizeBytes: model.length });
    });
});
