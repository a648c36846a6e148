// Connections per client, so that no one client can take every connection the server keeps
// open and lock the others out. A connection belongs to the client whose token its requests
// carry: the app's own UI (the x-xquant-token header), an API client (the same token as a
// bearer key), or, until a request says otherwise, nobody (any local process can connect).
import type http from "node:http";
import type { Socket } from "node:net";

export type ClientKind = "ui" | "api" | "anonymous";

// Together they bound the open connections. The UI's share is more than a browser opens to
// one host (six), so several windows of the app fit in it.
export const connectionShares: Readonly<Record<ClientKind, number>> = { ui: 16, api: 32, anonymous: 16 };

export class ConnectionBudget {
    // in the order they connected: the oldest first
    private readonly kinds = new Map<Socket, ClientKind>();
    // connections with a request in progress
    private readonly busy = new Set<Socket>();

    constructor(private readonly shares: Readonly<Record<ClientKind, number>> = connectionShares) {}

    // A new connection belongs to nobody yet. Past the anonymous share the oldest idle
    // anonymous connection makes room, so connections opened and left silent cannot keep
    // out one that asks; when every one of them has a request in progress, the new one is closed.
    connect(socket: Socket): void {
        socket.once("close", () => {
            this.kinds.delete(socket);
            this.busy.delete(socket);
        });
        const anonymous = this.open("anonymous");
        if (anonymous.length >= this.shares.anonymous) {
            const idle = anonymous.find((other) => !this.busy.has(other));
            if (idle === undefined) return void socket.destroy();
            idle.destroy();
        }
        this.kinds.set(socket, "anonymous");
    }

    // Whether a request may go on. The first request that carries a token moves its connection
    // to that client's share, while the share has room; the connection stays there.
    admit(request: http.IncomingMessage, response: http.ServerResponse, kind: ClientKind): boolean {
        const socket = request.socket;
        const current = this.kinds.get(socket);
        if (current === "anonymous" && kind !== "anonymous") {
            if (this.open(kind).length >= this.shares[kind]) return false;
            this.kinds.set(socket, kind);
        }
        this.busy.add(socket);
        response.once("close", () => this.busy.delete(socket));
        return true;
    }

    private open(kind: ClientKind): Socket[] {
        return [...this.kinds].filter(([socket, owner]) => owner === kind && !socket.destroyed).map(([socket]) => socket);
    }
}
