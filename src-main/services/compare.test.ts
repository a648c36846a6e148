import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fillDisk } from "../../test-support/disk-faults.ts";
import { unhandledRejectionsDuring } from "../../test-support/unhandled-rejections.ts";
import type { ApiEvent, CompareRun } from "../api/contract.ts";
import { Services } from "./services.ts";

describe("compare runs on a full disk", () => {
    afterEach(() => vi.restoreAllMocks());

    it("announce their end even when the last save fails, and reject nothing unhandled", async () => {
        // no engine runs: the run's model is not in the library, so it fails at once
        const services = new Services({ appDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-compare-")), maxThreads: 2 });
        const logged = vi.spyOn(console, "error").mockImplementation(() => {});
        const unhandled = await unhandledRejectionsDuring(async () => {
            const ended = new Promise<CompareRun>((resolve) => services.subscribe((event: ApiEvent) => {
                if (event.type === "compare" && event.run.state !== "running") resolve(event.run);
            }));
            const run = services.compare.start({ modelId: "gone", modes: ["xq-4"], kind: "prompt", text: "Hi", maxTokens: 4, contextSize: 256 });
            fillDisk();
            expect(await ended).toMatchObject({ id: run.id, state: "failed", results: [{ error: expect.stringContaining("not in the library") }] });
        });
        expect(unhandled).toEqual([]);
        expect(logged).toHaveBeenCalledWith(expect.stringMatching(/could not be saved: ENOSPC/));
    });
});
