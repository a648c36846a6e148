// The preload: exposes exactly the contract's methods as window.xq, each one
// an IPC invoke. Bundled to CommonJS because sandboxed preloads cannot import.
import { contextBridge, ipcRenderer } from "electron";
import { apiMethods, ipcChannel, type XQuantApi } from "../api/contract.ts";

const api = Object.fromEntries(
    apiMethods.map((method) => [method, (request: unknown) => ipcRenderer.invoke(ipcChannel(method), request)]),
) as XQuantApi;

contextBridge.exposeInMainWorld("xq", api);
