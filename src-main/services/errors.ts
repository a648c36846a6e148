// Typed API errors: what every request answers with when it cannot be done.
import type { ApiError, ApiErrorCode } from "../api/contract.ts";
import { EngineError } from "../engine/errors.ts";

export class RequestError extends Error {
    readonly error: ApiError;
    constructor(code: ApiErrorCode, message: string) {
        super(message);
        this.error = { code, message };
    }
}

// EngineErrors become typed API errors with the engine's readable message.
export function toRequestError(error: unknown): RequestError {
    if (error instanceof RequestError) return error;
    if (error instanceof EngineError) {
        const code = error.code === "unsupported-architecture" ? "unsupported-architecture"
            : error.code === "model-invalid" || error.code === "model-not-found" ? "model-invalid" : "engine-unavailable";
        return new RequestError(code, error.message);
    }
    return new RequestError("internal", `Something went wrong: ${(error as Error).message}`);
}
