// The local server front door: the same renderer in a browser, talking to the
// same services over HTTP. Binds 127.0.0.1 only.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { ApiErrorCode } from "../api/contract.ts";
import type { Services } from "../services/services.ts";
import { ConnectionBudget, connectionShares, type ClientKind } from "./connections.ts";
import { readJsonBody, sendJson, writeEvent } from "./http.ts";
import { handleOpenAi } from "./openai.ts";

const contentTypes: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
};

export interface RunningServer {
    // the address to open, with the per-run token the API requires
    url: string;
    origin: string;
    token: string;
    close(): Promise<void>;
}

export const tokenHeader = "x-xquant-token";

// The HTTP status of a typed error; any other is the client's mistake (400).
const apiErrorStatus: Partial<Record<ApiErrorCode, number>> = { busy: 429, internal: 500, "engine-internal": 500 };

async function handleApi(services: Services, method: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (request.method !== "POST") return sendJson(response, 405, { ok: false, error: { code: "bad-request", message: "Use POST" } });
    const read = await readJsonBody(request, {});
    if (!read.ok) return sendJson(response, read.status, { ok: false, error: { code: "bad-request", message: read.message } });
    const result = await services.handleRequest(method, read.value);
    sendJson(response, result.ok ? 200 : apiErrorStatus[result.error.code] ?? 400, result);
}

// Server-sent events: every ApiEvent as one `data:` line, with a comment every 15 s to keep proxies from timing out.
async function streamEvents(services: Services, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    writeEvent(response, ": connected\n\n");
    const unsubscribe = services.subscribe((event) => writeEvent(response, `data: ${JSON.stringify(event)}\n\n`));
    const keepAlive = setInterval(() => writeEvent(response, ": keep-alive\n\n"), 15_000);
    request.on("close", () => {
        clearInterval(keepAlive);
        unsubscribe();
    });
}

// A request target the server cannot read: the handler answers 400 instead of throwing.
class MalformedRequest extends Error {}

function decodePath(urlPath: string): string {
    try {
        return decodeURIComponent(urlPath);
    } catch {
        throw new MalformedRequest("The request path is not valid percent-encoding");
    }
}

function serveStatic(staticDir: string, urlPath: string, response: http.ServerResponse): void {
    const relative = path.normalize(decodePath(urlPath)).replace(/^([/\\])+/, "");
    let file = path.join(staticDir, relative);
    if (!file.startsWith(staticDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(staticDir, "index.html");
    if (!fs.existsSync(file)) {
        response.writeHead(503, { "content-type": "text/plain" });
        response.end("The UI is not built. Run `npm run build`.");
        return;
    }
    response.writeHead(200, {
        "content-type": contentTypes[path.extname(file)] ?? "application/octet-stream",
        "content-security-policy": "default-src 'self'; script-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
    });
    fs.createReadStream(file).on("error", () => response.destroy()).pipe(response);
}

// Which client a request comes from: the UI sends the per-run token in x-xquant-token, an
// API client as an OpenAI-style bearer key; without the right token, nobody known.
function clientOf(request: http.IncomingMessage, token: string): ClientKind {
    // compared as bytes: a header of the token's length in characters can differ in bytes
    const tokenBytes = Buffer.from(token);
    const matches = (presented: string | string[] | undefined) => {
        const presentedBytes = Buffer.from(typeof presented === "string" ? presented : "");
        return presentedBytes.length === tokenBytes.length && crypto.timingSafeEqual(presentedBytes, tokenBytes);
    };
    if (matches(request.headers[tokenHeader])) return "ui";
    return matches(/^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1]) ? "api" : "anonymous";
}

// Only this machine's own pages may talk to the API: the Host header must name
// the server (no DNS rebinding), a browser Origin must be the server's own, and
// every API request carries the random per-run token.
function checkRequest(request: http.IncomingMessage, port: number, client: ClientKind): { status: number; message: string } | null {
    const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
    if (!allowedHosts.includes(request.headers.host ?? "")) return { status: 403, message: "Unknown Host header" };
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedHosts.some((host) => origin === `http://${host}`)) return { status: 403, message: "Foreign Origin" };
    if (client === "anonymous") return { status: 401, message: "Missing or wrong token" };
    return null;
}

export function startServer(options: { services: Services; staticDir: string; port?: number }): Promise<RunningServer> {
    const staticDir = path.resolve(options.staticDir);
    const token = crypto.randomBytes(24).toString("base64url");
    let port = 0;
    const route = (request: http.IncomingMessage, response: http.ServerResponse, client: ClientKind): Promise<void> => {
        let url: URL;
        try {
            url = new URL(request.url ?? "/", "http://127.0.0.1");
        } catch {
            throw new MalformedRequest("The request target is not a valid URL");
        }
        const api = /^\/api\/([A-Za-z]+)$/.exec(url.pathname);
        const openAi = url.pathname.startsWith("/v1/");
        if (!api && !openAi) return Promise.resolve(serveStatic(staticDir, url.pathname, response));
        const refused = checkRequest(request, port, client);
        if (refused) return Promise.resolve(sendJson(response, refused.status, { ok: false, error: { code: "bad-request", message: refused.message } }));
        return openAi ? handleOpenAi(options.services, url.pathname, request, response)
            : api![1] === "events" ? streamEvents(options.services, request, response)
            : handleApi(options.services, api![1]!, request, response);
    };
    const budget = new ConnectionBudget();
    // Every request runs under this one catch: no request, however malformed, stops the server.
    const server = http.createServer((request, response) => {
        const fail = (error: unknown) => {
            if (response.headersSent) return void response.end();
            const malformed = error instanceof MalformedRequest;
            sendJson(response, malformed ? 400 : 500, { ok: false, error: { code: malformed ? "bad-request" : "internal", message: (error as Error).message } });
        };
        const client = clientOf(request, token);
        if (!budget.admit(request, response, client)) {
            response.setHeader("connection", "close");
            return sendJson(response, 503, { ok: false, error: { code: "busy", message: `This client has all the ${connectionShares[client]} connections it may keep open; close some, then try again.` } });
        }
        try {
            route(request, response, client).catch(fail);
        } catch (error) {
            fail(error);
        }
    });
    // a slow or idle client cannot hold a connection open for ever, nor take every connection
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.on("connection", (socket) => budget.connect(socket));
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.port ?? 0, "127.0.0.1", () => {
            port = (server.address() as AddressInfo).port;
            const origin = `http://127.0.0.1:${port}`;
            resolve({
                url: `${origin}/#token=${token}`,
                origin,
                token,
                close: () => new Promise((done) => {
                    server.closeAllConnections();
                    server.close(() => done());
                }),
            });
        });
    });
}
