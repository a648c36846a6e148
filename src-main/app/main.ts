// The Electron shell: a secure window over the renderer, with every contract
// method handled in main by the same services as the local server.
import path from "node:path";
import { app, BrowserWindow, ipcMain, shell } from "electron";
import { apiMethods, ipcChannel } from "../api/contract.ts";
import { Services } from "../services/services.ts";

const services = new Services();

function createWindow(): void {
    const window = new BrowserWindow({
        width: 1200,
        height: 800,
        title: "XQuant Desktop",
        webPreferences: {
            preload: path.join(import.meta.dirname, "preload.cjs"),
            contextIsolation: true,
            sandbox: true,
            nodeIntegration: false,
            webSecurity: true,
        },
    });
    // The renderer never navigates away or opens windows; https links go to the system browser.
    window.webContents.on("will-navigate", (event) => event.preventDefault());
    window.webContents.setWindowOpenHandler(({ url }) => {
        if (url.startsWith("https://")) void shell.openExternal(url);
        return { action: "deny" };
    });
    void window.loadFile(path.join(import.meta.dirname, "..", "dist-renderer", "index.html"));
}

if (!app.requestSingleInstanceLock()) {
    app.quit();
} else {
    for (const method of apiMethods) {
        ipcMain.handle(ipcChannel(method), (_event, request: unknown) => services.handleRequest(method, request));
    }
    app.whenReady().then(() => {
        app.on("web-contents-created", (_event, contents) => {
            contents.session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
        });
        createWindow();
    });
    app.on("window-all-closed", () => app.quit());
    app.on("will-quit", () => void services.dispose());
}
