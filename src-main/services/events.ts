// The event bus from services to every front door (IPC windows, HTTP streams).
import type { ApiEvent } from "../api/contract.ts";

export type EventListener = (event: ApiEvent) => void;

export class EventBus {
    private readonly listeners = new Set<EventListener>();

    subscribe(listener: EventListener): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }

    emit(event: ApiEvent): void {
        for (const listener of this.listeners) listener(event);
    }
}

// Calls `send` at most once per interval with the latest value; the last value always goes out.
export function throttle<T>(intervalMs: number, send: (value: T) => void): (value: T) => void {
    let last = 0;
    let pending: { value: T } | null = null;
    let timer: NodeJS.Timeout | null = null;
    return (value: T) => {
        const now = Date.now();
        if (now - last >= intervalMs && timer === null) {
            last = now;
            send(value);
            return;
        }
        pending = { value };
        timer ??= setTimeout(() => {
            timer = null;
            last = Date.now();
            if (pending !== null) send(pending.value);
            pending = null;
        }, intervalMs - (now - last));
    };
}
