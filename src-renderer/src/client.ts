// One typed client, two transports: the Electron preload (window.xq) or HTTP
// to the local server. Both implement XQuantApi from the contract.
import type { ApiMethod, ApiRequest, ApiResponse, ApiResult, XQuantApi } from "../../src-main/api/contract.ts";
import { apiMethods } from "../../src-main/api/contract.ts";

declare global {
    interface Window {
        xq?: XQuantApi;
    }
}

// The local server puts its per-run token in the URL fragment, which never
// leaves the browser; it goes back in a header with every API call.
function httpClient(): XQuantApi {
    const token = new URLSearchParams(window.location.hash.slice(1)).get("token") ?? "";
    const call = async <M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResult<ApiResponse<M>>> => {
        try {
            const response = await fetch(`./api/${method}`, {
                method: "POST",
                headers: { "content-type": "application/json", "x-xquant-token": token },
                body: JSON.stringify(request),
            });
            return (await response.json()) as ApiResult<ApiResponse<M>>;
        } catch (error) {
            return { ok: false, error: { code: "engine-unavailable", message: `The server cannot be reached: ${(error as Error).message}` } };
        }
    };
    return Object.fromEntries(apiMethods.map((method) => [method, (request: never) => call(method, request)])) as XQuantApi;
}

export const client: XQuantApi = window.xq ?? httpClient();
