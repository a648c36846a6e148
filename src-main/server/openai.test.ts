// The OpenAI-compatible route's checks that come before any model is read: no engine runs here.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Services } from "../services/services.ts";
import { maxCompletionTokens } from "./openai.ts";
import { startServer, type RunningServer } from "./server.ts";

describe("the OpenAI-compatible route, before any model is read", () => {
    const services = new Services({ appDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-openai-")), maxThreads: 2 });
    let server: RunningServer;
    beforeAll(async () => {
        server = await startServer({ services, staticDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-")) });
    });
    afterAll(() => server.close());

    const complete = (body: unknown) => fetch(`${server.origin}/v1/chat/completions`, {
        method: "POST", headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });

    it("refuses max_tokens past the stated cap, naming it", async () => {
        const response = await complete({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: maxCompletionTokens + 1 });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ error: { message: `"max_tokens": Too big: expected number to be <=${maxCompletionTokens}` } });
    });
});
