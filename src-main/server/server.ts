// The local server front door: the same renderer in a browser, talking to the
// same services over HTTP. Binds 127.0.0.1 only.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { Services } from "../services/services.ts";
import { readBody, sendJson } from "./http.ts";
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

async function handleApi(services: Services, method: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (request.method !== "POST") return sendJson(response, 405, { ok: false, error: { code: "bad-request", message: "Use POST" } });
    let argument: unknown;
    try {
        argument = JSON.parse((await readBody(request)) || "{}");
    } catch {
        return sendJson(response, 400, { ok: false, error: { code: "bad-request", message: "The request body is not valid JSON" } });
    }
    const result = await services.handleRequest(method, argument);
    sendJson(response, result.ok ? 200 : result.error.code === "internal" ? 500 : 400, result);
}

// Server-sent events: every ApiEvent as one `data:` line, with a comment every 15 s to keep proxies from timing out.
async function streamEvents(services: Services, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    response.write(": connected\n\n");
    const unsubscribe = services.subscribe((event) => response.write(`data: ${JSON.stringify(event)}\n\n`));
    const keepAlive = setInterval(() => response.write(": keep-alive\n\n"), 15_000);
    request.on("close", () => {
        clearInterval(keepAlive);
        unsubscribe();
    });
}

function serveStatic(staticDir: string, urlPath: string, response: http.ServerResponse): void {
    const relative = path.normalize(decodeURIComponent(urlPath)).replace(/^([/\\])+/, "");
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
    fs.createReadStream(file).pipe(response);
}

// Only this machine's own pages may talk to the API: the Host header must name
// the server (no DNS rebinding), a browser Origin must be the server's own, and
// every API request carries the random per-run token (in x-xquant-token, or as
// an OpenAI-style bearer key).
function checkRequest(request: http.IncomingMessage, port: number, token: string): { status: number; message: string } | null {
    const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
    if (!allowedHosts.includes(request.headers.host ?? "")) return { status: 403, message: "Unknown Host header" };
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedHosts.some((host) => origin === `http://${host}`)) return { status: 403, message: "Foreign Origin" };
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
    const presented = request.headers[tokenHeader] ?? bearer;
    if (typeof presented !== "string" || presented.length !== token.length || !crypto.timingSafeEqual(Buffer.from(presented), Buffer.from(token))) {
        return { status: 401, message: "Missing or wrong token" };
    }
    return null;
}

export function startServer(options: { services: Services; staticDir: string; port?: number }): Promise<RunningServer> {
    const staticDir = path.resolve(options.staticDir);
    const token = crypto.randomBytes(24).toString("base64url");
    let port = 0;
    const server = http.createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://127.0.0.1");
        const api = /^\/api\/([A-Za-z]+)$/.exec(url.pathname);
        const openAi = url.pathname.startsWith("/v1/");
        if (!api && !openAi) return serveStatic(staticDir, url.pathname, response);
        const refused = checkRequest(request, port, token);
        if (refused) return sendJson(response, refused.status, { ok: false, error: { code: "bad-request", message: refused.message } });
        const handled = openAi ? handleOpenAi(options.services, url.pathname, request, response)
            : api![1] === "events" ? streamEvents(options.services, request, response)
            : handleApi(options.services, api![1]!, request, response);
        handled.catch((error: Error) => {
            if (!response.headersSent) sendJson(response, 500, { ok: false, error: { code: "internal", message: error.message } });
            else response.end();
        });
    });
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
