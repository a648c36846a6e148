import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import type { ApiEvent, Chat } from "../api/contract.ts";
import { Services } from "../services/services.ts";
import { startServer, tokenHeader, type RunningServer } from "./server.ts";

describe("local server", () => {
    // a queue of one: any request while a reply generates is past its bound
    const services = new Services({ appDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-server-")), maxThreads: 2, generationQueueCapacity: 1 });
    const staticDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-"));
    let server: RunningServer;

    beforeAll(async () => {
        fs.writeFileSync(path.join(staticDir, "index.html"), "<!doctype html><title>XQuant Desktop</title>");
        server = await startServer({ services, staticDir });
        await services.handleRequest("importModel", { path: fixturePath("mha-trained") });
        await services.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 256, baseLayers: -1 } });
    });

    afterAll(async () => {
        await server.close();
        await services.dispose();
        fs.rmSync(staticDir, { recursive: true, force: true });
    });

    const api = (init: { headers?: Record<string, string>; body?: string } = {}) =>
        fetch(`${server.origin}/api/getEngineInfo`, { method: "POST", body: init.body ?? "{}", headers: { [tokenHeader]: server.token, ...init.headers } });

    it("binds 127.0.0.1 and serves the renderer, with the token in the URL fragment", async () => {
        expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]{32}$/);
        const response = await fetch(server.url);
        expect(response.status).toBe(200);
        expect(await response.text()).toContain("XQuant Desktop");
    });

    // One raw request, as a hostile page or client could send it; resolves with the status.
    const rawRequest = async (target: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}) => {
        const { request } = await import("node:http");
        return new Promise<number>((resolve, reject) => {
            const req = request({ host: "127.0.0.1", port: new URL(server.origin).port, path: target, method: options.method ?? "GET", headers: { host: new URL(server.origin).host, ...options.headers } },
                (res) => {
                    res.resume();
                    resolve(res.statusCode ?? 0);
                });
            req.on("error", reject);
            req.end(options.body);
        });
    };

    it("never dies from a request: bad percent-encoding, a bad target, a non-ASCII token, an oversized body", async () => {
        expect(await rawRequest("/%")).toBe(400);
        expect(await rawRequest("//x:99999")).toBe(400);
        expect(await rawRequest("/api/getEngineInfo", { method: "POST", headers: { [tokenHeader]: "\u00e9".repeat(server.token.length) }, body: Buffer.from("{}") })).toBe(401);
        expect(await rawRequest("/api/getEngineInfo", { method: "POST", headers: { [tokenHeader]: server.token }, body: Buffer.alloc(2 << 20, 0x20) })).toBe(413);
        expect(await rawRequest("/v1/chat/completions", { method: "POST", headers: { authorization: `Bearer ${server.token}` }, body: Buffer.alloc(2 << 20, 0x20) })).toBe(413);
        expect((await api()).status).toBe(200);
    });

    it("answers contract methods over HTTP", async () => {
        const body = await (await api()).json();
        expect(body).toMatchObject({ ok: true, value: { xquant: true } });
    });

    it("refuses API requests without the token or with a wrong one", async () => {
        const missing = await fetch(`${server.origin}/api/getEngineInfo`, { method: "POST", body: "{}" });
        expect(missing.status).toBe(401);
        expect((await api({ headers: { [tokenHeader]: "x".repeat(server.token.length) } })).status).toBe(401);
    });

    it("refuses a foreign Origin and a foreign Host (DNS rebinding)", async () => {
        const foreignOrigin = await api({ headers: { origin: "http://evil.example" } });
        expect(foreignOrigin.status).toBe(403);
        expect(await foreignOrigin.json()).toMatchObject({ ok: false, error: { message: "Foreign Origin" } });
        const { request } = await import("node:http");
        const status = await new Promise<number>((resolve, reject) => {
            const req = request(`${server.origin}/api/getEngineInfo`, { method: "POST", headers: { host: "evil.example", [tokenHeader]: server.token } }, (res) => resolve(res.statusCode ?? 0));
            req.on("error", reject);
            req.end("{}");
        });
        expect(status).toBe(403);
        expect((await api({ headers: { origin: server.origin } })).status).toBe(200);
    });

    it("answers malformed JSON with a typed 400", async () => {
        const response = await api({ body: "{nope" });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ ok: false, error: { code: "bad-request" } });
    });

    it("does not serve files outside the renderer folder", async () => {
        const response = await fetch(`${server.origin}/..%2f..%2fetc%2fpasswd`);
        expect(await response.text()).not.toContain("root:");
    });

    it("streams service events as server-sent events", async () => {
        const abort = new AbortController();
        const response = await fetch(`${server.origin}/api/events`, { headers: { [tokenHeader]: server.token }, signal: abort.signal });
        expect(response.headers.get("content-type")).toBe("text/event-stream");
        const reader = response.body!.getReader();
        await reader.read();
        await api({ body: "{}" });
        const created = await (await fetch(`${server.origin}/api/createChat`, { method: "POST", body: "{}", headers: { [tokenHeader]: server.token } })).json() as { value: Chat };
        let text = "";
        while (!text.includes("\n\n") || !text.includes(created.value.id)) text += new TextDecoder().decode((await reader.read()).value);
        const event = JSON.parse(/data: (.*)\n\n/.exec(text)![1]!);
        expect(event).toMatchObject({ type: "chat", chat: { id: created.value.id, title: "New chat" } });
        abort.abort();
        expect((await fetch(`${server.origin}/api/events`)).status).toBe(401);
    });

    const openAi = (route: string, body?: unknown, key = server.token) => fetch(`${server.origin}${route}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });

    it("lists models OpenAI-style, with the modes each supports", async () => {
        const body = await (await openAi("/v1/models")).json();
        expect(body).toMatchObject({ object: "list", data: [{ id: "mha-trained", object: "model", xquant_modes: expect.arrayContaining(["kv-f16", "xq-4", "xqcl-2"]) }] });
        expect((await openAi("/v1/models", undefined, "wrong".padEnd(server.token.length, "x"))).status).toBe(401);
    });

    it("answers chat completions in one piece and streamed, in the requested cache mode", async () => {
        const request = { model: "mha-trained", messages: [{ role: "user", content: "In the beginning" }], temperature: 0, max_tokens: 8, xquant_cache_mode: "xq-4" };
        const whole = await (await openAi("/v1/chat/completions", request)).json() as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
        expect(whole).toMatchObject({ object: "chat.completion", xquant_cache_mode: "xq-4", choices: [{ message: { role: "assistant" }, finish_reason: "length" }] });
        const content = whole.choices[0]!.message.content;
        expect(content.length).toBeGreaterThan(0);
        // the chat template's tokens count: more than the question's own three or so
        expect(whole.usage.prompt_tokens).toBeGreaterThan(3);
        expect(whole.usage).toEqual({ prompt_tokens: whole.usage.prompt_tokens, completion_tokens: 8, total_tokens: whole.usage.prompt_tokens + 8 });
        const streamed = await (await openAi("/v1/chat/completions", { ...request, stream: true, stream_options: { include_usage: true } })).text();
        const chunks = streamed.split("\n\n").filter((line) => line.startsWith("data: {")).map((line) => JSON.parse(line.slice(6)));
        expect(streamed.trim().endsWith("data: [DONE]")).toBe(true);
        expect(chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage });
        expect(chunks.slice(0, -1).map((chunk) => chunk.choices[0].delta.content ?? "").join("")).toBe(content);
    });

    it("answers malformed completions with OpenAI-style errors", async () => {
        const noMessages = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [] });
        expect(noMessages.status).toBe(400);
        expect(await noMessages.json()).toMatchObject({ error: { type: "invalid_request_error", message: expect.stringContaining("messages") } });
        const badMode = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }], xquant_cache_mode: "xq-9" });
        expect(await badMode.json()).toMatchObject({ error: { message: expect.stringContaining("xquant_cache_mode") } });
        expect((await openAi("/v1/chat/completions", { model: "nope", messages: [{ role: "user", content: "hi" }] })).status).toBe(404);
    });

    it("validates completions like every request, and shares the one generation queue with chats", async () => {
        const hot = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }], temperature: 9 });
        expect(hot.status).toBe(400);
        expect(await hot.json()).toMatchObject({ error: { message: '"temperature": Too big: expected number to be <=2' } });
        const noTokens = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }], max_tokens: 0 });
        expect(await noTokens.json()).toMatchObject({ error: { message: expect.stringContaining('"max_tokens"') } });
        // what the server cannot honour is refused, not ignored
        const stop = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }], stop: ["\n"] });
        expect(stop.status).toBe(400);
        expect(await stop.json()).toMatchObject({ error: { type: "invalid_request_error", message: '"stop": is not supported; leave it out' } });
        const twoChoices = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }], n: 2 });
        expect(twoChoices.status).toBe(400);
        expect(await twoChoices.json()).toMatchObject({ error: { message: '"n": must be 1: this server answers with one choice' } });
        const parts = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] });
        expect(await parts.json()).toMatchObject({ error: { message: '"messages.0.content": must be a string (content parts are not supported)' } });

        const createChat = async () => {
            const created = await services.handleRequest("createChat", { modelId: "mha-trained" });
            if (!created.ok) throw new Error(created.error.message);
            return created.value.id;
        };
        const nextEvent = (chatId: string, type: ApiEvent["type"]) => new Promise<void>((resolve) => {
            const unsubscribe = services.subscribe((event) => {
                if (event.type !== type || !("chatId" in event) || event.chatId !== chatId) return;
                unsubscribe();
                resolve();
            });
        });
        const otherChatId = await createChat();
        const answered = nextEvent(otherChatId, "generation-done");
        await services.handleRequest("sendMessage", { chatId: otherChatId, text: "In the beginning" });
        await answered;
        const otherChat = await services.handleRequest("getChat", { chatId: otherChatId });

        const chatId = await createChat();
        await services.handleRequest("updateChat", { chatId, sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 400, seed: 1 } });
        const firstToken = nextEvent(chatId, "token");
        const finished = nextEvent(chatId, "generation-done");
        await services.handleRequest("sendMessage", { chatId, text: "In the beginning" });
        await firstToken;
        const busy = await openAi("/v1/chat/completions", { model: "mha-trained", messages: [{ role: "user", content: "hi" }] });
        expect(busy.status).toBe(429);
        // a refused Regenerate in another chat leaves that chat's reply in place
        const regenerate = await fetch(`${server.origin}/api/regenerate`, { method: "POST", body: JSON.stringify({ chatId: otherChatId }), headers: { [tokenHeader]: server.token } });
        expect(regenerate.status).toBe(429);
        expect(await regenerate.json()).toMatchObject({ ok: false, error: { code: "busy" } });
        expect(await services.handleRequest("getChat", { chatId: otherChatId })).toEqual(otherChat);
        await services.handleRequest("stopGeneration", { chatId });
        await finished;
    });
});

describe("a completion whose client leaves", () => {
    it("while its request is still being planned gives its place in the queue back", async () => {
        const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-server-left-"));
        const setup = new Services({ appDir, maxThreads: 2 });
        await setup.handleRequest("importModel", { path: fixturePath("mha-trained") });
        await setup.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 4000, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 256, baseLayers: -1 } });
        await setup.dispose();
        // a fresh start: its first plan reads the model's header in an engine process that has yet to start
        const services = new Services({ appDir, maxThreads: 2, generationQueueCapacity: 1 });
        const server = await startServer({ services, staticDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-")) });
        try {
            const { request } = await import("node:http");
            const left = request(`${server.origin}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" } });
            left.on("error", () => undefined);
            left.end(JSON.stringify({ model: "mha-trained", messages: [{ role: "user", content: "In the beginning" }] }));
            await new Promise((resolve) => setTimeout(resolve, 100));
            left.destroy();
            // long enough for a completion that nobody stopped to be generating its 4000 tokens
            await new Promise((resolve) => setTimeout(resolve, 3000));
            const next = await fetch(`${server.origin}/v1/chat/completions`, {
                method: "POST", headers: { authorization: `Bearer ${server.token}` },
                body: JSON.stringify({ model: "mha-trained", messages: [{ role: "user", content: "In the beginning" }], max_tokens: 4 }),
            });
            expect(next.status).toBe(200);
        } finally {
            await server.close();
            await services.dispose();
        }
    });
});

describe("a completion whose client disconnects frees its place in the queue within 1 s", () => {
    // a queue of two: a chat reply generating takes one place, a waiting completion the other
    const services = new Services({ appDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-server-gone-")), maxThreads: 2, generationQueueCapacity: 2 });
    let server: RunningServer;
    let modelId = "";
    const body = JSON.stringify({ model: "", messages: [{ role: "user", content: "In the beginning" }], stream: true });

    beforeAll(async () => {
        server = await startServer({ services, staticDir: fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-")) });
        const imported = await services.handleRequest("importModel", { path: fixturePath("mha-random-f16") });
        if (!imported.ok) throw new Error(imported.error.message);
        modelId = imported.value.id;
        await services.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 4000, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 4096, baseLayers: -1 } });
    });

    afterAll(async () => {
        await server.close();
        await services.dispose();
    });

    // A streaming completion, on a raw connection the test can cut at any moment.
    const completion = async (options: { partialBody?: boolean } = {}) => {
        const { request } = await import("node:http");
        const json = body.replace('"model":""', `"model":"${modelId}"`);
        const chunks: string[] = [];
        let status = 0;
        const client = request(`${server.origin}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json", "content-length": String(json.length) } }, (response) => {
            status = response.statusCode ?? 0;
            response.on("data", (chunk: Buffer) => chunks.push(chunk.toString()));
            response.on("error", () => undefined);
        });
        client.on("error", () => undefined);
        if (options.partialBody) client.write(json.slice(0, 10));
        else client.end(json);
        return { client, status: () => status, text: () => chunks.join("") };
    };

    const until = async (condition: () => boolean, timeoutMs = 60_000) => {
        const end = Date.now() + timeoutMs;
        while (!condition()) {
            if (Date.now() > end) throw new Error("timed out waiting");
            await new Promise((resolve) => setTimeout(resolve, 10));
        }
    };

    const second = () => new Promise((resolve) => setTimeout(resolve, 1000));

    // Whether a new completion gets a place: a full queue answers 429 at once, a free one lets it
    // wait or run. The probe leaves again, and has a second to give its place back.
    const admitted = async () => {
        const probe = await completion();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const refused = probe.status() === 429;
        probe.client.destroy();
        await second();
        return !refused;
    };

    it("while its body is read, while it waits in the queue, and while it generates", async () => {
        // while its body is read
        const reading = await completion({ partialBody: true });
        await new Promise((resolve) => setTimeout(resolve, 100));
        reading.client.destroy();
        await second();
        expect(await admitted()).toBe(true);

        // while it generates
        const generating = await completion();
        await until(() => generating.text().includes('"content"'));
        generating.client.destroy();
        await second();
        const holder = await completion();
        await until(() => holder.text().includes('"content"'));
        // the holder generates; one more place is left
        expect(await admitted()).toBe(true);

        // while it waits behind the holder
        const waiting = await completion();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(waiting.status()).toBe(0);
        expect(await admitted()).toBe(false);
        waiting.client.destroy();
        await second();
        expect(await admitted()).toBe(true);
        holder.client.destroy();
    });
});
