// The preload: exposes the contract as window.xq, each call an IPC invoke of
// one contract method's channel, plus one event subscription. Bundled to
// CommonJS because sandboxed preloads cannot import.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from "electron";
import type { ApiEvent, XQuantApi } from "../api/contract.ts";
import { ipcChannel, ipcEventChannel, isApiMethod } from "../api/methods.ts";

const api: XQuantApi = {
    // the page can pass anything: only the contract's channels are invoked
    call: (method, request) => isApiMethod(method)
        ? ipcRenderer.invoke(ipcChannel(method), request)
        : Promise.resolve({ ok: false, error: { code: "unknown-method", message: `Unknown method: ${String(method)}` } }),
    onEvent(listener: (event: ApiEvent) => void): () => void {
        const forward = (_event: IpcRendererEvent, event: ApiEvent) => listener(event);
        ipcRenderer.on(ipcEventChannel, forward);
        return () => ipcRenderer.removeListener(ipcEventChannel, forward);
    },
};

contextBridge.exposeInMainWorld("xq", api);
