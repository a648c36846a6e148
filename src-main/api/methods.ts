// The contract's method names and IPC channels, without the schemas: what the
// Electron preload needs, so that it does not bundle the schema library.
// contract.ts checks that its method table has exactly these methods.
export const apiMethods = [
    "getEngineInfo", "getSystemMemory",
    "listModels", "getCatalog", "listDownloads", "startDownload", "pauseDownload", "resumeDownload", "cancelDownload", "importModel", "deleteModel",
    "getSettings", "updateSettings", "estimateModes",
    "listChats", "getChat", "createChat", "deleteChat", "updateChat", "sendMessage", "regenerate", "editMessage", "stopGeneration",
    "openSession", "getSession", "closeSession", "getMetrics",
    "startCompare", "stopCompare", "listCompareRuns",
    "startCheck", "stopCheck", "listChecks",
] as const;

export type ApiMethod = (typeof apiMethods)[number];

export function isApiMethod(name: string): name is ApiMethod {
    return (apiMethods as readonly string[]).includes(name);
}

export const ipcChannel = (method: ApiMethod): string => `xq:${method}`;
export const ipcEventChannel = "xq:event";
