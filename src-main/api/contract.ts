// The API contract: the single source of truth for what the UI may ask of the
// main process, over Electron IPC or the local HTTP server. Types only, plus the
// method list; nothing here imports node or electron.

export interface EngineInfo {
    // Whether the loaded llama.cpp binary carries the XQuant marker.
    xquant: boolean;
    patchSeriesVersion: string;
    systemInfo: string;
    threads: number;
}

export type ApiErrorCode = "bad-request" | "unknown-method" | "engine-unavailable" | "internal";

export interface ApiError {
    code: ApiErrorCode;
    message: string;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

// Every request the UI can make: method name -> [argument, response].
export interface ApiMethods {
    getEngineInfo: [Record<string, never>, EngineInfo];
}

export type ApiMethod = keyof ApiMethods;
export type ApiRequest<M extends ApiMethod> = ApiMethods[M][0];
export type ApiResponse<M extends ApiMethod> = ApiMethods[M][1];

// The object the preload exposes as window.xq, and the HTTP client implements.
export type XQuantApi = { [M in ApiMethod]: (request: ApiRequest<M>) => Promise<ApiResult<ApiResponse<M>>> };

export const apiMethods: readonly ApiMethod[] = ["getEngineInfo"];

export const ipcChannel = (method: ApiMethod): string => `xq:${method}`;

export function isApiMethod(name: string): name is ApiMethod {
    return (apiMethods as readonly string[]).includes(name);
}
