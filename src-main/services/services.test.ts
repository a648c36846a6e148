import { afterAll, describe, expect, it } from "vitest";
import { Services } from "./services.ts";

describe("services", () => {
    const services = new Services();
    afterAll(() => services.dispose());

    it("answers getEngineInfo from the real engine", async () => {
        const result = await services.handleRequest("getEngineInfo", {});
        expect(result.ok).toBe(true);
        if (result.ok) expect(result.value).toMatchObject({ xquant: true, systemInfo: expect.stringContaining("XQUANT = 1") });
    });

    it("rejects an unknown method with a typed error", async () => {
        expect(await services.handleRequest("deleteEverything", {})).toEqual({ ok: false, error: { code: "unknown-method", message: "Unknown method: deleteEverything" } });
    });

    it.each([null, 42, "text", [1]])("rejects the malformed argument %j", async (argument) => {
        const result = await services.handleRequest("getEngineInfo", argument);
        expect(result).toMatchObject({ ok: false, error: { code: "bad-request" } });
    });
});
