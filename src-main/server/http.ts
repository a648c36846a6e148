// Small HTTP helpers shared by the API and the OpenAI-compatible routes.
import type http from "node:http";

export const maxBodyBytes = 1 << 20;

export function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
    response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    response.end(JSON.stringify(body));
}

// What an event stream may hold unsent for a client that has stopped reading; past it the
// server drops that client rather than buffer its events without bound.
export const maxUnsentEventBytes = 1 << 20;

// Writes one server-sent event. Returns false, and closes the connection, once the client has
// let more than maxUnsentEventBytes pile up (or is gone).
export function writeEvent(response: http.ServerResponse, text: string): boolean {
    if (response.destroyed) return false;
    if (response.writableLength > maxUnsentEventBytes) {
        response.destroy();
        return false;
    }
    response.write(text);
    return true;
}

export type JsonBody = { ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string };

// Reads and parses a JSON body (an empty body is `empty`). A body over the limit is not
// read on: the rest is drained, so the client gets its 413 instead of a reset connection.
export function readJsonBody(request: http.IncomingMessage, empty?: unknown): Promise<JsonBody> {
    return new Promise((resolve) => {
        let size = 0;
        const chunks: Buffer[] = [];
        const onData = (chunk: Buffer) => {
            size += chunk.length;
            if (size <= maxBodyBytes) return void chunks.push(chunk);
            request.off("data", onData);
            request.resume();
            resolve({ ok: false, status: 413, message: `The request body is larger than ${maxBodyBytes} bytes` });
        };
        request.on("data", onData);
        request.on("error", () => resolve({ ok: false, status: 400, message: "The request body could not be read" }));
        request.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if (text === "" && empty !== undefined) return resolve({ ok: true, value: empty });
            try {
                resolve({ ok: true, value: JSON.parse(text) as unknown });
            } catch {
                resolve({ ok: false, status: 400, message: "The request body is not valid JSON" });
            }
        });
    });
}
