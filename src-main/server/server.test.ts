import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Services } from "../services/services.ts";
import { startServer, tokenHeader, type RunningServer } from "./server.ts";

describe("local server", () => {
    const services = new Services();
    const staticDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-static-"));
    let server: RunningServer;

    beforeAll(async () => {
        fs.writeFileSync(path.join(staticDir, "index.html"), "<!doctype html><title>XQuant Desktop</title>");
        server = await startServer({ services, staticDir });
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
});
