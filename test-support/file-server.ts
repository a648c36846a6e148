// A file server on 127.0.0.1 for download tests: honours Range requests, can
// cut the first long transfer part-way (an interrupted connection), can hold
// transfers back (to pause them), can redirect, and records every request's Range header.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TestFileServer {
    url: (name: string) => string;
    ranges: string[];
    close(): Promise<void>;
}

export interface TestFileServerOptions {
    // cut the first transfer longer than this many bytes after sending them
    cutAfterBytes?: number;
    // claim this size instead of the real one (for the free-disk check)
    claimedSize?: number;
    // send at most this many bytes per 100 ms
    bytesPerTick?: number;
    // answer these names with a 302 to the given Location
    redirects?: Record<string, string>;
}

export async function startTestFileServer(files: Record<string, Buffer>, options: TestFileServerOptions = {}): Promise<TestFileServer> {
    const ranges: string[] = [];
    let cutPending = options.cutAfterBytes !== undefined;
    const server = http.createServer((request, response) => {
        const name = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname.slice(1));
        const location = options.redirects?.[name];
        if (location !== undefined) return response.writeHead(302, { location }).end();
        const data = files[name];
        if (data === undefined) return response.writeHead(404).end();
        const size = options.claimedSize ?? data.length;
        const match = /bytes=(\d+)-(\d*)/.exec(request.headers.range ?? "");
        ranges.push(request.headers.range ?? "");
        const start = match ? Number(match[1]) : 0;
        const end = match?.[2] ? Number(match[2]) : size - 1;
        response.writeHead(match ? 206 : 200, {
            "accept-ranges": "bytes",
            "content-length": end - start + 1,
            "content-type": "application/octet-stream",
            ...(match ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
        });
        if (request.method === "HEAD") return response.end();
        const body = data.subarray(start, end + 1);
        if (cutPending && body.length > options.cutAfterBytes!) {
            cutPending = false;
            response.write(body.subarray(0, options.cutAfterBytes));
            setTimeout(() => response.destroy(), 50);
            return;
        }
        if (options.bytesPerTick === undefined) return response.end(body);
        let offset = 0;
        const timer = setInterval(() => {
            if (response.destroyed) return clearInterval(timer);
            response.write(body.subarray(offset, offset + options.bytesPerTick!));
            offset += options.bytesPerTick!;
            if (offset >= body.length) {
                clearInterval(timer);
                response.end();
            }
        }, 100);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
        url: (name) => `${origin}/${name}`,
        ranges,
        close: () => new Promise((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
        }),
    };
}

// The servers one test file starts, closed together after it.
export function fileServerPool(): { serve: typeof startTestFileServer; closeAll(): Promise<void> } {
    const servers: TestFileServer[] = [];
    return {
        serve: async (...args) => {
            const server = await startTestFileServer(...args);
            servers.push(server);
            return server;
        },
        closeAll: async () => {
            for (const server of servers.splice(0)) await server.close();
        },
    };
}
