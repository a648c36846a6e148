import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Services } from "../services/services.ts";
import { startServer, type RunningServer } from "./server.ts";

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

    it("binds 127.0.0.1 and serves the renderer", async () => {
        expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        const response = await fetch(server.url);
        expect(response.status).toBe(200);
        expect(await response.text()).toContain("XQuant Desktop");
    });

    it("answers contract methods over HTTP", async () => {
        const response = await fetch(`${server.url}api/getEngineInfo`, { method: "POST", body: "{}" });
        const body = await response.json();
        expect(body).toMatchObject({ ok: true, value: { xquant: true } });
    });

    it("answers malformed JSON with a typed 400", async () => {
        const response = await fetch(`${server.url}api/getEngineInfo`, { method: "POST", body: "{nope" });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({ ok: false, error: { code: "bad-request" } });
    });

    it("does not serve files outside the renderer folder", async () => {
        const response = await fetch(`${server.url}..%2f..%2fetc%2fpasswd`);
        expect(await response.text()).not.toContain("root:");
    });
});
