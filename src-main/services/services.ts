// The services behind the contract. They know neither the transport (IPC or
// HTTP) nor the UI; both front doors call handleRequest.
import type { ApiError, ApiMethod, ApiMethods, ApiResult, EngineInfo } from "../api/contract.ts";
import { isApiMethod } from "../api/contract.ts";
import { Engine, EngineError } from "../engine/engine.ts";

type Handlers = { [M in ApiMethod]: (request: ApiMethods[M][0]) => Promise<ApiMethods[M][1]> };

class RequestError extends Error {
    readonly error: ApiError;
    constructor(error: ApiError) {
        super(error.message);
        this.error = error;
    }
}

export class Services {
    private enginePromise: Promise<Engine> | null = null;
    private readonly handlers: Handlers = {
        getEngineInfo: async () => this.engineInfo(),
    };

    // Starts the engine once; a failed start is retried on the next request.
    private engine(): Promise<Engine> {
        this.enginePromise ??= Engine.start().catch((error: unknown) => {
            this.enginePromise = null;
            const message = error instanceof EngineError ? error.message : `The engine could not start: ${(error as Error).message}`;
            throw new RequestError({ code: "engine-unavailable", message });
        });
        return this.enginePromise;
    }

    private async engineInfo(): Promise<EngineInfo> {
        const engine = await this.engine();
        return { xquant: true, ...engine.info };
    }

    // Validates the method and argument shape at the boundary; never throws.
    async handleRequest(method: string, request: unknown): Promise<ApiResult<unknown>> {
        if (!isApiMethod(method)) return { ok: false, error: { code: "unknown-method", message: `Unknown method: ${method}` } };
        if (typeof request !== "object" || request === null || Array.isArray(request)) {
            return { ok: false, error: { code: "bad-request", message: `${method} expects an object argument` } };
        }
        try {
            const handler = this.handlers[method] as (request: unknown) => Promise<unknown>;
            return { ok: true, value: await handler(request) };
        } catch (error) {
            if (error instanceof RequestError) return { ok: false, error: error.error };
            return { ok: false, error: { code: "internal", message: (error as Error).message } };
        }
    }

    async dispose(): Promise<void> {
        const engine = await this.enginePromise?.catch(() => null);
        await engine?.dispose();
    }
}
