// An OpenAI-compatible surface: GET /v1/models and POST /v1/chat/completions
// (streaming SSE or one JSON reply). The extension field `xquant_cache_mode`
// picks the cache mode; otherwise the model's default run settings apply.
// This file only translates OpenAI's JSON: the services validate, resolve the
// run settings and generate, as for every other request.
import type http from "node:http";
import type { ApiError, ApiErrorCode } from "../api/contract.ts";
import type { Services } from "../services/services.ts";
import { readJsonBody, sendJson } from "./http.ts";

// OpenAI's field names for the completion request's: validation messages name the fields the client sent.
const openAiFieldNames: Record<string, string> = {
    modelId: "model", cacheMode: "xquant_cache_mode", topP: "top_p", maxTokens: "max_tokens", text: "content",
};

function openAiError(response: http.ServerResponse, status: number, message: string, type = "invalid_request_error"): void {
    sendJson(response, status, { error: { message, type, code: null } });
}

const errorStatus: Partial<Record<ApiErrorCode, [number, string]>> = {
    "not-found": [404, "not_found_error"],
    busy: [429, "rate_limit_error"],
};

function sendApiError(response: http.ServerResponse, error: ApiError): void {
    const [status, type] = errorStatus[error.code] ?? [400, "invalid_request_error"];
    const message = error.message.replace(/"(\w+)"/g, (quoted, name: string) => openAiFieldNames[name] === undefined ? quoted : `"${openAiFieldNames[name]}"`);
    openAiError(response, status, message, type);
}

// OpenAI's chat request as a completion request, or a reason why it is not one.
// Values are checked by the services; only the shape of `messages` is OpenAI's own.
function toCompletionRequest(body: unknown): Record<string, unknown> | string {
    if (typeof body !== "object" || body === null) return "The body must be a JSON object";
    const fields = body as Record<string, unknown>;
    if (!Array.isArray(fields.messages) || fields.messages.length === 0) return "\"messages\" must be a non-empty array";
    const system: string[] = [];
    const messages: { role: "user" | "assistant"; text: string }[] = [];
    for (const message of fields.messages as unknown[]) {
        const { role, content } = (message ?? {}) as Record<string, unknown>;
        if ((role !== "system" && role !== "user" && role !== "assistant") || typeof content !== "string") {
            return "each message needs a role (system, user or assistant) and string content";
        }
        if (role === "system") system.push(content);
        else messages.push({ role, text: content });
    }
    const sampling = { temperature: fields.temperature, topP: fields.top_p, maxTokens: fields.max_tokens, seed: fields.seed };
    return {
        modelId: fields.model,
        systemPrompt: system.join("\n"),
        messages,
        cacheMode: fields.xquant_cache_mode,
        sampling: Object.fromEntries(Object.entries(sampling).filter(([, value]) => value !== undefined)),
    };
}

async function completions(services: Services, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const read = await readJsonBody(request);
    if (!read.ok) return openAiError(response, read.status, read.message);
    const body = read.value;
    const completionRequest = toCompletionRequest(body);
    if (typeof completionRequest === "string") return openAiError(response, 400, completionRequest);
    const planned = await services.planCompletion(completionRequest);
    if (!planned.ok) return sendApiError(response, planned.error);
    const plan = planned.value;
    const stream = (body as { stream?: unknown }).stream === true;
    const id = `chatcmpl-${Date.now().toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    response.on("close", () => abort.abort());
    const chunk = (delta: Record<string, string>, finishReason: string | null) => ({
        id, object: "chat.completion.chunk", created, model: plan.modelId, xquant_cache_mode: plan.run.cacheMode,
        choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    // the stream opens with the first text, so that a refusal before it (busy, load failure) is still an HTTP error
    const write = (data: unknown) => {
        if (!response.headersSent) {
            response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
            response.write(`data: ${JSON.stringify(chunk({ role: "assistant" }, null))}\n\n`);
        }
        response.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    const result = await services.complete(plan, (text) => {
        if (stream) write(chunk({ content: text }, null));
    }, abort.signal);
    if (!result.ok) {
        if (!response.headersSent) return sendApiError(response, result.error);
        write({ error: { message: result.error.message, type: "invalid_request_error" } });
        response.end();
        return;
    }
    const finishReason = result.value.tokens >= plan.sampling.maxTokens ? "length" : "stop";
    if (stream) {
        write(chunk({}, finishReason));
        response.write("data: [DONE]\n\n");
        response.end();
        return;
    }
    sendJson(response, 200, {
        id, object: "chat.completion", created, model: plan.modelId, xquant_cache_mode: plan.run.cacheMode,
        choices: [{ index: 0, message: { role: "assistant", content: result.value.text }, finish_reason: finishReason }],
        usage: { completion_tokens: result.value.tokens },
    });
}

async function listModels(services: Services, response: http.ServerResponse): Promise<void> {
    const models = await services.handleRequest("listModels", {});
    if (!models.ok) return sendApiError(response, models.error);
    sendJson(response, 200, {
        object: "list",
        data: models.value.map((model) => ({ id: model.id, object: "model", created: 0, owned_by: "local", xquant_modes: model.modes.filter((mode) => mode.available).map((mode) => mode.mode) })),
    });
}

export async function handleOpenAi(services: Services, pathname: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (pathname === "/v1/models" && request.method === "GET") return listModels(services, response);
    if (pathname === "/v1/chat/completions" && request.method === "POST") return completions(services, request, response);
    openAiError(response, 404, `No route for ${request.method} ${pathname}`, "not_found_error");
}
