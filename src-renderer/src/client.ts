// One typed client, two transports: the Electron preload (window.xq) or HTTP
// to the local server. Both implement XQuantApi from the contract.
import type { ApiEvent, XQuantApi } from "../../src-main/api/contract.ts";
import { backoffMs, parseSseFrames } from "./sse.ts";

declare global {
    interface Window {
        xq?: XQuantApi;
    }
}

type Listener = (event: ApiEvent) => void;

// One shared event stream for all listeners, opened on the first subscription
// and reconnected with backoff. EventSource cannot send the token header, so
// the stream is read with fetch.
function eventStream(token: string): (listener: Listener) => () => void {
    const listeners = new Set<Listener>();
    let running = false;

    async function readOnce(): Promise<void> {
        const response = await fetch("./api/events", { headers: { "x-xquant-token": token, accept: "text/event-stream" } });
        if (!response.ok || !response.body) throw new Error(`event stream: HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            const { data, rest } = parseSseFrames(buffer + value);
            buffer = rest;
            for (const json of data) {
                const event = JSON.parse(json) as ApiEvent;
                for (const listener of listeners) listener(event);
            }
        }
    }

    async function run(): Promise<void> {
        let failures = 0;
        while (listeners.size > 0) {
            const started = Date.now();
            try {
                await readOnce();
            } catch {
                // fall through to the reconnect delay
            }
            // a stream that stayed up a while was healthy: start the backoff over
            failures = Date.now() - started > 5_000 ? 1 : failures + 1;
            await new Promise((resolve) => setTimeout(resolve, backoffMs(failures)));
        }
        running = false;
    }

    return (listener) => {
        listeners.add(listener);
        if (!running) {
            running = true;
            void run();
        }
        return () => listeners.delete(listener);
    };
}

const tokenKey = "xquant-token";

// The local server puts its per-run token in the URL fragment, which never leaves the
// browser. It is read once, kept in this tab's session storage (so a reload still works)
// and taken out of the address bar and the history, where anyone who sees or copies the
// address would find it.
function sessionToken(): string {
    const fromUrl = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (fromUrl === null) return sessionStorage.getItem(tokenKey) ?? "";
    sessionStorage.setItem(tokenKey, fromUrl);
    history.replaceState(history.state, "", window.location.pathname + window.location.search);
    return fromUrl;
}

// The token goes back in a header with every API call.
function httpClient(): XQuantApi {
    const token = sessionToken();
    return {
        // the server validates every request and answers with the contract's ApiResult
        async call(method, request) {
            try {
                const response = await fetch(`./api/${method}`, {
                    method: "POST",
                    headers: { "content-type": "application/json", "x-xquant-token": token },
                    body: JSON.stringify(request),
                });
                return await response.json();
            } catch (error) {
                return { ok: false, error: { code: "engine-unavailable", message: `The server cannot be reached (${(error as Error).message}). Check that it is still running, then reload.` } };
            }
        },
        onEvent: eventStream(token),
    };
}

export const client: XQuantApi = window.xq ?? httpClient();
