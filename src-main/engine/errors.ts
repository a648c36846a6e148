// The engine's typed errors. Every code is also an API error code (src-main/api/contract.ts),
// and the services pass it on unchanged (services/errors.ts).
export const engineErrorCodes = [
    "native-not-built", "stock-binary", "model-not-found", "model-invalid", "unsupported-architecture",
    // node-llama-cpp could not create a context (or created one with another cache)
    "context-failed",
    // a saved state belongs to another cache mode
    "state-mode-mismatch",
    // the engine process ended (a crash, an abort, an out-of-memory kill)
    "engine-stopped",
    // an engine call got no answer (or no progress) in time; its process was killed
    "engine-timeout",
    // the context's cache would not fit in the free memory
    "context-too-large",
    // a download's write hit ENOSPC
    "disk-full",
    // a call named a model, context or chat that has been disposed
    "handle-disposed",
    // the engine process failed with an error of no known kind: a bug, reported with its message
    "engine-internal",
] as const;

export type EngineErrorCode = (typeof engineErrorCodes)[number];

export class EngineError extends Error {
    readonly code: EngineErrorCode;
    constructor(code: EngineErrorCode, message: string) {
        super(message);
        this.name = "EngineError";
        this.code = code;
    }
}
