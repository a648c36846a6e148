// node-llama-cpp's own prebuilt binary lacks our marker: the engine's check
// must refuse it. Runs in its own process (vitest forks per file), since two
// llama.cpp builds cannot share one process.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { XQUANT_MARKER, verifyXQuantBinary } from "./engine.ts";

describe("the stock node-llama-cpp binary", () => {
    it("lacks the marker and is refused", async () => {
        const stock = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false });
        try {
            expect(stock.buildType).toBe("prebuilt");
            expect(stock.systemInfo).not.toContain(XQUANT_MARKER);
            expect(() => verifyXQuantBinary(stock.systemInfo)).toThrow(/not the XQuant build/);
        } finally {
            await stock.dispose();
        }
    });
});
