// The engine's typed errors; the services turn them into API errors.
export type EngineErrorCode = "native-not-built" | "stock-binary" | "model-not-found" | "model-invalid"
    | "unsupported-architecture" | "context-failed" | "state-mode-mismatch";

export class EngineError extends Error {
    readonly code: EngineErrorCode;
    constructor(code: EngineErrorCode, message: string) {
        super(message);
        this.name = "EngineError";
        this.code = code;
    }
}
