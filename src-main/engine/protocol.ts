// What the app's side (remote.ts) and the engine process (host.ts) say to each other over IPC.
import type { EngineErrorCode } from "./errors.ts";

// Set in the engine process's environment: host.ts serves only where it is.
export const engineProcessMarker = "XQ_ENGINE_PROCESS";

export type HostRequest =
    | { kind: "call"; callId: number; operation: string; args: unknown[] }
    | { kind: "abort"; callId: number };

export type HostReply =
    | { kind: "result"; callId: number; value: unknown }
    | { kind: "error"; callId: number; code: EngineErrorCode; message: string }
    | { kind: "emit"; callId: number; value: unknown }
    | { kind: "progress"; callId: number };

// What an operation may do besides returning: stream values back, report progress
// (which keeps the caller's watchdog from judging it hung), and notice an abort.
export interface CallIo {
    emit(value: unknown): void;
    progress(): void;
    signal: AbortSignal;
}
