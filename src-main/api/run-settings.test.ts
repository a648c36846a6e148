import { describe, expect, it } from "vitest";
import { resolveRunSettings } from "./run-settings.ts";

const defaultRun = { cacheMode: "kv-f16", contextSize: 2048, baseLayers: -1 } as const;
const tuned = { cacheMode: "xql-4", contextSize: 4096, baseLayers: 2 } as const;
const override = { cacheMode: "xq-2", contextSize: 1024, baseLayers: 0 } as const;
const settings = { defaultRun, modelDefaults: { tuned } };

describe("run settings", () => {
    it("a model's own default wins over the global one", () => {
        expect(resolveRunSettings(settings, "tuned")).toEqual(tuned);
        expect(resolveRunSettings(settings, "other")).toEqual(defaultRun);
        expect(resolveRunSettings(settings, null)).toEqual(defaultRun);
    });

    it("a model named like a property of every object gets the global default, not Object.prototype's", () => {
        for (const modelId of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
            expect(resolveRunSettings(settings, modelId)).toEqual(defaultRun);
        }
        expect(resolveRunSettings({ defaultRun, modelDefaults: { constructor: tuned } }, "constructor")).toEqual(tuned);
    });

    it("a chat's override wins over both", () => {
        expect(resolveRunSettings(settings, "tuned", override)).toEqual(override);
        expect(resolveRunSettings(settings, null, override)).toEqual(override);
    });

    it("the global default's context stops at the model's trained context; the user's own choices do not", () => {
        expect(resolveRunSettings(settings, "other", null, 512)).toEqual({ ...defaultRun, contextSize: 512 });
        expect(resolveRunSettings(settings, "other", null, 8192)).toEqual(defaultRun);
        expect(resolveRunSettings(settings, "other", null, 0)).toEqual(defaultRun);
        expect(resolveRunSettings(settings, "tuned", null, 512)).toEqual(tuned);
        expect(resolveRunSettings(settings, "other", override, 512)).toEqual(override);
    });
});
