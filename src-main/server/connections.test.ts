// The server's connections per client: one client that fills its share, or a process without
// the token that opens connections and sends nothing, never locks the UI out. No model is read.
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Services } from "../services/services.ts";
import { connectionShares } from "./connections.ts";
import { startServer, tokenHeader, type RunningServer } from "./server.ts";

describe("connections per client", () => {
    let services: Services;
    let server: RunningServer;
    const sockets: net.Socket[] = [];

    beforeEach(async () => {
        const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-connections-"));
        fs.writeFileSync(path.join(appDir, "index.html"), "<!doctype html><title>XQuant Desktop</title>");
        services = new Services({ appDir, maxThreads: 2 });
        server = await startServer({ services, staticDir: appDir });
    });

    afterEach(async () => {
        for (const socket of sockets.splice(0)) socket.destroy();
        await server.close();
        await services.dispose();
    });

    // What the UI asks: a contract method with its token header, on a connection of its own.
    const uiCall = async () => {
        const response = await fetch(`${server.origin}/api/listChats`, { method: "POST", body: "{}", headers: { [tokenHeader]: server.token, connection: "close" } });
        return { status: response.status, body: await response.json() };
    };

    const port = () => Number(new URL(server.origin).port);

    it("serves the UI, and a page load, past a process that opens connections and sends nothing", async () => {
        for (let i = 0; i < 4 * connectionShares.anonymous + connectionShares.ui + connectionShares.api; i++) {
            const socket = net.connect(port(), "127.0.0.1");
            socket.on("error", () => undefined);
            sockets.push(socket);
            await new Promise((resolve) => socket.once("connect", resolve));
        }
        expect(await uiCall()).toEqual({ status: 200, body: { ok: true, value: [] } });
        const page = await fetch(server.origin, { headers: { connection: "close" } });
        expect(await page.text()).toContain("XQuant Desktop");
    });

    it("refuses an API client past its share as busy, and still serves the UI", async () => {
        // completions whose bodies never come: each holds its connection while it is read
        const statuses: number[] = [];
        const held = Array.from({ length: connectionShares.api + 8 }, () => {
            const request = http.request({ host: "127.0.0.1", port: port(), path: "/v1/chat/completions", method: "POST", agent: false,
                headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json", "content-length": "1000" } }, (response) => {
                statuses.push(response.statusCode ?? 0);
                response.resume();
            });
            request.on("error", () => undefined);
            request.write("{");
            return request;
        });
        const until = async (condition: () => boolean) => {
            while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
        };
        await until(() => statuses.length === 8);
        expect(statuses).toEqual(Array(8).fill(503));
        expect(await uiCall()).toEqual({ status: 200, body: { ok: true, value: [] } });
        const refused = await fetch(`${server.origin}/v1/models`, { headers: { authorization: `Bearer ${server.token}`, connection: "close" } });
        expect(refused.status).toBe(503);
        expect(await refused.json()).toMatchObject({ ok: false, error: { code: "busy" } });
        // the held completions had no answer; once they are gone the client has its share again
        expect(statuses).toHaveLength(8);
        for (const request of held) request.destroy();
        const models = () => fetch(`${server.origin}/v1/models`, { headers: { authorization: `Bearer ${server.token}`, connection: "close" } });
        // 503 until the server has seen those connections close
        let status = 503;
        while (status === 503) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            status = (await models()).status;
        }
        expect(status).toBe(200);
    });
});
