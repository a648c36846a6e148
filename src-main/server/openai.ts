// An OpenAI-compatible surface: GET /v1/models and POST /v1/chat/completions
// (streaming SSE or one JSON reply). The extension field `xquant_cache_mode`
// picks the cache mode; otherwise the model's default run settings apply.
import http from "node:http";
import type { RunSettings, SamplingSettings } from "../api/contract.ts";
import { cacheModes, isCacheMode } from "../engine/cache-modes.ts";
import type { ChatTurn } from "../engine/chat.ts";
import type { Services } from "../services/services.ts";
import { toRequestError } from "../services/session.ts";
import { readBody, sendJson } from "./http.ts";

interface OpenAiMessage {
    role: "system" | "user" | "assistant";
    content: string;
}

interface ParsedCompletion {
    model: string;
    messages: OpenAiMessage[];
    stream: boolean;
    cacheMode: RunSettings["cacheMode"] | undefined;
    sampling: Partial<SamplingSettings>;
}

function openAiError(response: http.ServerResponse, status: number, message: string, type = "invalid_request_error"): void {
    sendJson(response, status, { error: { message, type, code: null } });
}

// Returns a readable reason instead of the request when something is off.
function parseCompletion(body: unknown): ParsedCompletion | string {
    if (typeof body !== "object" || body === null) return "The body must be a JSON object";
    const fields = body as Record<string, unknown>;
    if (typeof fields.model !== "string") return "\"model\" must be a model id from GET /v1/models";
    if (!Array.isArray(fields.messages) || fields.messages.length === 0) return "\"messages\" must be a non-empty array";
    const messages: OpenAiMessage[] = [];
    for (const message of fields.messages as unknown[]) {
        const { role, content } = (message ?? {}) as Record<string, unknown>;
        if ((role !== "system" && role !== "user" && role !== "assistant") || typeof content !== "string") {
            return "each message needs a role (system, user or assistant) and string content";
        }
        messages.push({ role, content });
    }
    if (fields.xquant_cache_mode !== undefined && !isCacheMode(fields.xquant_cache_mode)) return `"xquant_cache_mode" must be one of ${cacheModes.join(", ")}`;
    const numberField = (key: string, min: number, max: number): number | undefined => {
        const value = fields[key];
        return typeof value === "number" && value >= min && value <= max ? value : undefined;
    };
    return {
        model: fields.model,
        messages,
        stream: fields.stream === true,
        cacheMode: fields.xquant_cache_mode as RunSettings["cacheMode"] | undefined,
        sampling: { temperature: numberField("temperature", 0, 5), topP: numberField("top_p", 0, 1), maxTokens: numberField("max_tokens", 1, 1 << 20), seed: numberField("seed", 0, 2 ** 31) ?? null },
    };
}

async function completions(services: Services, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    let body: unknown;
    try {
        body = JSON.parse(await readBody(request));
    } catch {
        return openAiError(response, 400, "The request body is not valid JSON");
    }
    const parsed = parseCompletion(body);
    if (typeof parsed === "string") return openAiError(response, 400, parsed);
    const settings = services.settings.get();
    const model = (await services.library.list()).find((entry) => entry.id === parsed.model);
    if (model === undefined) return openAiError(response, 404, `The model ${parsed.model} is not in the library`, "not_found_error");
    const baseRun = settings.modelDefaults[model.id] ?? settings.defaultRun;
    const run: RunSettings = { ...baseRun, cacheMode: parsed.cacheMode ?? baseRun.cacheMode };
    const sampling = { ...settings.defaultSampling, ...Object.fromEntries(Object.entries(parsed.sampling).filter(([, value]) => value !== undefined)) } as SamplingSettings;
    const systemPrompt = parsed.messages.filter((message) => message.role === "system").map((message) => message.content).join("\n");
    const turns: ChatTurn[] = parsed.messages.filter((message) => message.role !== "system").map((message) => ({ role: message.role === "user" ? "user" : "assistant", text: message.content }));
    const id = `chatcmpl-${Date.now().toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    response.on("close", () => abort.abort());
    const chunk = (delta: Record<string, string>, finishReason: string | null) => ({
        id, object: "chat.completion.chunk", created, model: model.id, xquant_cache_mode: run.cacheMode,
        choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    if (parsed.stream) {
        response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
        response.write(`data: ${JSON.stringify(chunk({ role: "assistant" }, null))}\n\n`);
    }
    try {
        const result = await services.session.completeOnce(model.id, run, systemPrompt, turns, sampling, (text) => {
            if (parsed.stream) response.write(`data: ${JSON.stringify(chunk({ content: text }, null))}\n\n`);
        }, abort.signal);
        const finishReason = result.tokens >= sampling.maxTokens ? "length" : "stop";
        if (parsed.stream) {
            response.write(`data: ${JSON.stringify(chunk({}, finishReason))}\n\ndata: [DONE]\n\n`);
            response.end();
            return;
        }
        sendJson(response, 200, {
            id, object: "chat.completion", created, model: model.id, xquant_cache_mode: run.cacheMode,
            choices: [{ index: 0, message: { role: "assistant", content: result.text }, finish_reason: finishReason }],
            usage: { completion_tokens: result.tokens },
        });
    } catch (error) {
        const message = toRequestError(error).error.message;
        if (!parsed.stream) return openAiError(response, 400, message);
        response.write(`data: ${JSON.stringify({ error: { message, type: "invalid_request_error" } })}\n\n`);
        response.end();
    }
}

export async function handleOpenAi(services: Services, pathname: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (pathname === "/v1/models" && request.method === "GET") {
        const models = await services.library.list();
        return sendJson(response, 200, { object: "list", data: models.map((model) => ({ id: model.id, object: "model", created: 0, owned_by: "local", xquant_modes: model.modes.filter((mode) => mode.available).map((mode) => mode.mode) })) });
    }
    if (pathname === "/v1/chat/completions" && request.method === "POST") return completions(services, request, response);
    openAiError(response, 404, `No route for ${request.method} ${pathname}`, "not_found_error");
}
