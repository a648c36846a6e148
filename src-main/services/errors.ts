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

// EngineErrors become API errors with the same code (every engine code is an API code)
// and the engine's readable message; a full disk (a save that hit ENOSPC) a disk-full
// error that says what to do.
export function toRequestError(error: unknown): RequestError {
    if (error instanceof RequestError) return error;
    if (error instanceof EngineError) return new RequestError(error.code, error.message);
    if ((error as NodeJS.ErrnoException | undefined)?.code === "ENOSPC") {
        return new RequestError("disk-full", "The disk is full, so this could not be saved. Free some disk space and try again.");
    }
    return new RequestError("internal", `Something went wrong: ${(error as Error).message}`);
}
