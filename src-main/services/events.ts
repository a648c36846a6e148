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
