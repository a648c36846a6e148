// Calls into the app's services as the UI makes them, for the CLI tools that measure
// through the app's own path (stress, bench).
import type { ApiEvent } from "../api/contract.ts";
import type { Services } from "../services/services.ts";

// Resolves with the first event that matches.
export function nextEvent<T extends ApiEvent>(services: Services, match: (event: ApiEvent) => event is T): Promise<T> {
    return new Promise((resolve) => {
        const unsubscribe = services.subscribe((event) => {
            if (!match(event)) return;
            unsubscribe();
            resolve(event);
        });
    });
}

// The value of a request that must succeed.
export async function ok<T>(result: Promise<{ ok: true; value: T } | { ok: false; error: { code: string; message: string } }>): Promise<T> {
    const answer = await result;
    if (!answer.ok) throw new Error(`${answer.error.code}: ${answer.error.message}`);
    return answer.value;
}
