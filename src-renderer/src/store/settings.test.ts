import { describe, expect, it } from "vitest";
import type { Settings } from "../../../src-main/api/contract.ts";
import { modelRun } from "./settings.ts";

const defaultRun = { cacheMode: "kv-f16", contextSize: 2048, baseLayers: -1 } as const;
const tuned = { cacheMode: "xql-4", contextSize: 4096, baseLayers: 2 } as const;
const settings = { defaultRun, modelDefaults: { tuned: tuned } } as unknown as Settings;

describe("run settings", () => {
    it("a model's own default wins over the global one", () => {
        expect(modelRun(settings, "tuned")).toEqual(tuned);
        expect(modelRun(settings, "other")).toEqual(defaultRun);
        expect(modelRun(settings, null)).toEqual(defaultRun);
    });
});
