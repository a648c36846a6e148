import http from "node:http";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { maxUnsentEventBytes, writeEvent } from "./http.ts";

describe("server-sent events", () => {
    it("drop a client that stops reading instead of buffering its events without bound", async () => {
        const event = `data: ${"x".repeat(64 * 1024)}\n\n`;
        let written = 0;
        const dropped = new Promise<void>((resolve) => {
            const server = http.createServer((_request, response) => {
                response.writeHead(200, { "content-type": "text/event-stream" });
                const pump = setInterval(() => {
                    // as fast as the socket takes them: a burst per tick, until the server gives up
                    for (let i = 0; i < 16; i++) {
                        if (!writeEvent(response, event)) {
                            clearInterval(pump);
                            server.close();
                            return resolve();
                        }
                        written += event.length;
                    }
                }, 1);
            });
            server.listen(0, "127.0.0.1", () => {
                const { port } = server.address() as net.AddressInfo;
                const client = net.connect(port, "127.0.0.1", () => {
                    client.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                    client.pause(); // never reads
                });
                client.on("error", () => undefined);
            });
        });
        await dropped;
        // what the kernel's socket buffers took, plus at most the allowance and one burst
        expect(written).toBeGreaterThan(maxUnsentEventBytes);
        expect(written).toBeLessThan(64 * 1024 * 1024);
    });
});
