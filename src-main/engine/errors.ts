// The engine's typed errors; the services turn them into API errors.
export type EngineErrorCode = "native-not-built" | "stock-binary" | "model-not-found" | "model-invalid"
    | "unsupported-architecture" | "context-failed" | "state-mode-mismatch"
    // the engine process ended (a crash, an abort, an out-of-memory kill)
    | "engine-stopped"
    // an engine call got no answer (or no progress) in time; its process was killed
    | "engine-timeout"
    // the context's cache would not fit in the free memory
    | "context-too-large"
    // a download's write hit ENOSPC
    | "disk-full";

export class EngineError extends Error {
    readonly code: EngineErrorCode;
    constructor(code: EngineErrorCode, message: string) {
        super(message);
        this.name = "EngineError";
        this.code = code;
    }
}
