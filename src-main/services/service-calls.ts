// Calls into the services as the UI makes them, for the tools and tests that work through
// the app's own path (stress, bench, the services' tests).
import type { ApiEvent, ApiMethod, ApiRequest, ApiResponse } from "../api/contract.ts";
import type { Services } from "./services.ts";

// The value of a request that must succeed.
export async function ok<T>(result: Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>): Promise<T> {
    const answer = await result;
    if (!answer.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`);
    return answer.value;
}

// A request that must succeed, by method.
export function call<M extends ApiMethod>(services: Services, method: M, request: ApiRequest<M>): Promise<ApiResponse<M>> {
    return ok(services.handleRequest(method, request));
}

// Resolves with the first event that matches; rejects after timeoutMs, if given.
export function nextEvent<T extends ApiEvent>(services: Services, match: (event: ApiEvent) => event is T, timeoutMs?: number): Promise<T> {
    return new Promise((resolve, reject) => {
        const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
            unsubscribe();
            reject(new Error("no matching event"));
        }, timeoutMs);
        const unsubscribe = services.subscribe((event) => {
            if (!match(event)) return;
            clearTimeout(timer);
            unsubscribe();
            resolve(event);
        });
    });
}
