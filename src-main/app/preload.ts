// The preload: exposes exactly the contract's methods as window.xq, each one
// an IPC invoke, plus one event subscription. Bundled to CommonJS because
// sandboxed preloads cannot import.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from "electron";
import { apiMethods, ipcChannel, ipcEventChannel, type ApiEvent, type XQuantApi } from "../api/contract.ts";

const methods = Object.fromEntries(apiMethods.map((method) => [method, (request: unknown) => ipcRenderer.invoke(ipcChannel(method), request)]));

const api = {
    ...methods,
    onEvent(listener: (event: ApiEvent) => void): () => void {
        const forward = (_event: IpcRendererEvent, event: ApiEvent) => listener(event);
        ipcRenderer.on(ipcEventChannel, forward);
        return () => ipcRenderer.removeListener(ipcEventChannel, forward);
    },
} as unknown as XQuantApi;

contextBridge.exposeInMainWorld("xq", api);
