// An OpenAI-compatible surface: GET /v1/models and POST /v1/chat/completions
// (streaming SSE or one JSON reply). The extension field `xquant_cache_mode`
// picks the cache mode; otherwise the model's default run settings apply.
// This file only translates OpenAI's JSON: the services validate, resolve the
// run settings and generate, as for every other request.
import type http from "node:http";
import { z } from "zod";
import { cacheModeSchema, describeIssues, type ApiError, type ApiErrorCode, type CompletionRequest } from "../api/contract.ts";
import type { Services } from "../services/services.ts";
import { readJsonBody, sendJson, writeEvent } from "./http.ts";

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
    // own keys only: a quoted "constructor" must not find Object.prototype's
    const message = error.message.replace(/"(\w+)"/g, (quoted, name: string) => Object.hasOwn(openAiFieldNames, name) ? `"${openAiFieldNames[name]}"` : quoted);
    openAiError(response, status, message, type);
}

// The most tokens one completion generates: what a request may ask for, and where the
// settings' default max tokens (which may be up to 2^20) stops for a request that asks
// for nothing. OpenAI's own chat models stop at 16,384 output tokens too.
export const maxCompletionTokens = 16_384;

// OpenAI's chat request, as far as this server implements it, with OpenAI's
// ranges. What it cannot honour (`stop`, several choices) is refused with a
// 400 that says so, never silently ignored; fields it does not know are dropped.
const openAiRequestSchema = z.object({
    model: z.string(),
    messages: z.array(z.object({
        role: z.enum(["system", "user", "assistant"]),
        content: z.string("must be a string (content parts are not supported)"),
    })).min(1),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    max_tokens: z.number().int().min(1).max(maxCompletionTokens).optional(),
    seed: z.number().int().min(0).max(2 ** 31).optional(),
    stream: z.boolean().optional(),
    // include_usage: a last chunk carries the usage, as OpenAI sends it
    stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
    n: z.literal(1, "must be 1: this server answers with one choice").optional(),
    stop: z.null("is not supported; leave it out").optional(),
    xquant_cache_mode: cacheModeSchema.optional(),
});
type OpenAiRequest = z.infer<typeof openAiRequestSchema>;

// OpenAI's chat request as a completion request (which the services check again).
function toCompletionRequest(request: OpenAiRequest): CompletionRequest {
    const system = request.messages.filter((message) => message.role === "system").map((message) => message.content);
    const sampling = { temperature: request.temperature, topP: request.top_p, maxTokens: request.max_tokens, seed: request.seed };
    return {
        modelId: request.model,
        systemPrompt: system.join("\n"),
        messages: request.messages.flatMap(({ role, content }) => role === "system" ? [] : [{ role, text: content }]),
        cacheMode: request.xquant_cache_mode,
        sampling: Object.fromEntries(Object.entries(sampling).filter(([, value]) => value !== undefined)),
    };
}

async function completions(services: Services, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    // before the first await: a client that leaves at any point, even while its request is
    // read or planned, stops its completion and gives its place in the queue back
    const abort = new AbortController();
    response.on("close", () => abort.abort());
    const read = await readJsonBody(request);
    if (!read.ok) return openAiError(response, read.status, read.message);
    const parsed = openAiRequestSchema.safeParse(read.value);
    if (!parsed.success) return openAiError(response, 400, describeIssues(parsed.error));
    const planned = await services.planCompletion(toCompletionRequest(parsed.data));
    if (!planned.ok) return sendApiError(response, planned.error);
    if (abort.signal.aborted) return;
    const plan = { ...planned.value, sampling: { ...planned.value.sampling, maxTokens: Math.min(planned.value.sampling.maxTokens, maxCompletionTokens) } };
    const stream = parsed.data.stream === true;
    const id = `chatcmpl-${Date.now().toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, string>, finishReason: string | null) => ({
        id, object: "chat.completion.chunk", created, model: plan.modelId, xquant_cache_mode: plan.run.cacheMode,
        choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    // the stream opens with the first text, so that a refusal before it (busy, load failure) is still an HTTP error
    const write = (data: unknown) => {
        if (!response.headersSent) {
            response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
            writeEvent(response, `data: ${JSON.stringify(chunk({ role: "assistant" }, null))}\n\n`);
        }
        // a client that lets too much pile up unread is dropped, and its generation stops at once
        if (!writeEvent(response, `data: ${JSON.stringify(data)}\n\n`)) abort.abort();
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
    const { promptTokens, tokens } = result.value;
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens };
    if (stream) {
        write(chunk({}, finishReason));
        if (parsed.data.stream_options?.include_usage) write({ id, object: "chat.completion.chunk", created, model: plan.modelId, choices: [], usage });
        writeEvent(response, "data: [DONE]\n\n");
        response.end();
        return;
    }
    sendJson(response, 200, {
        id, object: "chat.completion", created, model: plan.modelId, xquant_cache_mode: plan.run.cacheMode,
        choices: [{ index: 0, message: { role: "assistant", content: result.value.text }, finish_reason: finishReason }],
        usage,
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
