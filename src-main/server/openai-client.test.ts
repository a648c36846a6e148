// The OpenAI-compatible route through OpenAI's own TypeScript client: what a tool built on
// that client reads (models, replies, usage, typed errors) is what the server means.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import { Services } from "../services/services.ts";
import { startServer, type RunningServer } from "./server.ts";

describe("the OpenAI-compatible route through the official openai client", () => {
    const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-openai-client-"));
    const services = new Services({ appDir, maxThreads: 2 });
    let server: RunningServer;
    let client: OpenAI;
    const question = { model: "mha-trained", messages: [{ role: "user" as const, content: "In the beginning" }], temperature: 0, max_tokens: 8 };

    beforeAll(async () => {
        server = await startServer({ services, staticDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-")) });
        const imported = await services.handleRequest("importModel", { path: fixturePath("mha-trained") });
        if (!imported.ok) throw new Error(imported.error.message);
        await services.handleRequest("updateSettings", { defaultRun: { cacheMode: "kv-f16", contextSize: 256, baseLayers: -1 } });
        // no retries: a refusal must reach the test as the client's typed error, once
        client = new OpenAI({ apiKey: server.token, baseURL: `${server.origin}/v1`, maxRetries: 0 });
    });

    afterAll(async () => {
        await server.close();
        await services.dispose();
        fs.rmSync(appDir, { recursive: true, force: true });
    });

    it("lists the models", async () => {
        const ids: string[] = [];
        for await (const model of client.models.list()) ids.push(model.id);
        expect(ids).toEqual(["mha-trained"]);
    });

    it("answers a completion with complete usage", async () => {
        const completion = await client.chat.completions.create(question);
        expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
        expect(completion.choices[0]!.finish_reason).toBe("length");
        const usage = completion.usage!;
        // the chat template's tokens count: more than the question's own three or so
        expect(usage.prompt_tokens).toBeGreaterThan(3);
        expect(usage.completion_tokens).toBe(8);
        expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    });

    it("streams the same completion and ends with its usage when asked", async () => {
        const whole = await client.chat.completions.create(question);
        const stream = await client.chat.completions.create({ ...question, stream: true, stream_options: { include_usage: true } });
        let text = "";
        let usage: OpenAI.CompletionUsage | null | undefined;
        for await (const chunk of stream) {
            text += chunk.choices[0]?.delta.content ?? "";
            if (chunk.usage) usage = chunk.usage;
        }
        // greedy sampling: the streamed text is the whole reply's
        expect(text).toBe(whole.choices[0]!.message.content);
        expect(usage).toEqual(whole.usage);
    });

    it("surfaces a bad request and an unknown model as the client's typed errors", async () => {
        const tooHot = client.chat.completions.create({ ...question, temperature: 9 });
        await expect(tooHot).rejects.toBeInstanceOf(OpenAI.BadRequestError);
        await expect(tooHot).rejects.toMatchObject({ status: 400, message: expect.stringContaining('"temperature"') });
        const unknown = client.chat.completions.create({ ...question, model: "no-such-model" });
        await expect(unknown).rejects.toBeInstanceOf(OpenAI.NotFoundError);
        await expect(unknown).rejects.toMatchObject({ status: 404 });
        const wrongKey = new OpenAI({ apiKey: "x".repeat(server.token.length), baseURL: `${server.origin}/v1`, maxRetries: 0 }).models.list();
        await expect(wrongKey).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    });
});
