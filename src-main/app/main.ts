// The Electron shell: a secure window over the renderer (served from app://,
// see app-protocol.ts), with every contract method handled in main by the same
// services as the local server, for the app's own page only.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { app, BrowserWindow, ipcMain, Menu, net, protocol, session, shell, utilityProcess, type MenuItemConstructorOptions } from "electron";
import { apiMethods, ipcChannel, ipcEventChannel, type ApiEvent, type AppCommand } from "../api/contract.ts";
import type { HostReply } from "../engine/protocol.ts";
import type { SpawnEngine } from "../engine/remote.ts";
import { Services } from "../services/services.ts";
import { readJson, writeJsonAtomic } from "../services/json-file.ts";
import { logUnhandledRejections } from "../services/process-guard.ts";
import { allowsPermission, appEntryUrl, appScheme, isAppFrame, resolveAppPath } from "./app-protocol.ts";

const rendererDir = path.join(import.meta.dirname, "..", "dist-renderer");

// The engine runs in an Electron utility process: a native crash or an
// out-of-memory kill there leaves the window and the chats alone.
const spawnUtilityEngine: SpawnEngine = (hostModule, env) => {
    const child = utilityProcess.fork(hostModule, [], { env, serviceName: "XQuant engine", stdio: "inherit" });
    return {
        send: (request) => child.postMessage(request),
        onMessage: (listener) => void child.on("message", (reply: HostReply) => listener(reply)),
        onExit: (listener) => void child.on("exit", (code) => listener(`exit code ${code}`)),
        kill: () => void child.kill(),
        get pid() {
            return child.pid;
        },
    };
};

const windowBoundsSchema = z.object({
    x: z.number().int().optional(),
    y: z.number().int().optional(),
    width: z.number().int().min(100),
    height: z.number().int().min(100),
    maximized: z.boolean(),
});
type WindowBounds = z.infer<typeof windowBoundsSchema>;

const boundsFile = () => path.join(app.getPath("userData"), "window.json");

// A menu item whose command reaches the focused window's renderer as an event,
// like everything else it hears from main.
function commandItem(label: string, accelerator: string, command: AppCommand): MenuItemConstructorOptions {
    return {
        label,
        accelerator,
        click: () => BrowserWindow.getFocusedWindow()?.webContents.send(ipcEventChannel, { type: "command", command } satisfies ApiEvent),
    };
}

function buildMenu(): void {
    const template: MenuItemConstructorOptions[] = [
        ...(process.platform === "darwin" ? [{ role: "appMenu" as const }] : []),
        { label: "File", submenu: [commandItem("New Chat", "CmdOrCtrl+N", "new-chat"), commandItem("Settings…", "CmdOrCtrl+,", "settings"), { type: "separator" }, { role: "quit" }] },
        { role: "editMenu" },
        { label: "Chat", submenu: [commandItem("Focus Input", "CmdOrCtrl+L", "focus-input"), commandItem("Stop Generation", "CmdOrCtrl+.", "stop")] },
        { role: "viewMenu" },
        { role: "windowMenu" },
    ];
    Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function createWindow(services: Services): BrowserWindow {
    const saved = readJson(boundsFile(), windowBoundsSchema);
    const window = new BrowserWindow({
        width: saved?.width ?? 1200,
        height: saved?.height ?? 800,
        ...(saved?.x !== undefined && saved.y !== undefined ? { x: saved.x, y: saved.y } : {}),
        minWidth: 720,
        minHeight: 480,
        title: "XQuant Desktop",
        webPreferences: {
            preload: path.join(import.meta.dirname, "preload.cjs"),
            contextIsolation: true,
            sandbox: true,
            nodeIntegration: false,
            webSecurity: true,
        },
    });
    if (saved?.maximized) window.maximize();
    window.on("close", () => {
        writeJsonAtomic(boundsFile(), windowBoundsSchema, { ...window.getNormalBounds(), maximized: window.isMaximized() } satisfies WindowBounds);
    });
    // The renderer never navigates away or opens windows; https links go to the system browser.
    window.webContents.on("will-navigate", (event) => event.preventDefault());
    window.webContents.setWindowOpenHandler(({ url }) => {
        if (url.startsWith("https://")) void shell.openExternal(url);
        return { action: "deny" };
    });
    const unsubscribe = services.subscribe((event) => {
        if (!window.isDestroyed()) window.webContents.send(ipcEventChannel, event);
    });
    window.on("closed", unsubscribe);
    void window.loadURL(appEntryUrl);
    return window;
}

if (!app.requestSingleInstanceLock()) {
    app.quit();
} else {
    logUnhandledRejections();
    const services = new Services({ appDir: app.getPath("userData"), spawnEngine: spawnUtilityEngine });
    for (const method of apiMethods) {
        // only the app's own page may ask; services.handleRequest validates every argument
        ipcMain.handle(ipcChannel(method), (event, request: unknown) => isAppFrame(event.senderFrame?.url)
            ? services.handleRequest(method, request)
            : { ok: false, error: { code: "forbidden", message: "Only the app's own page can make this request." } });
    }
    // a standard, secure scheme: the page gets an origin of its own, like https
    protocol.registerSchemesAsPrivileged([{ scheme: appScheme, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    app.on("second-instance", () => {
        const [window] = BrowserWindow.getAllWindows();
        if (window?.isMinimized()) window.restore();
        window?.focus();
    });
    app.whenReady().then(() => {
        protocol.handle(appScheme, (request) => {
            const file = resolveAppPath(rendererDir, request.url);
            if (file === null || !fs.existsSync(file)) return new Response("Not found", { status: 404 });
            return net.fetch(pathToFileURL(file).toString());
        });
        // the strict CSP itself is a meta tag in src-renderer/index.html, where 'self' is app://xquant
        session.defaultSession.setPermissionRequestHandler((_contents, permission, callback, details) => callback(allowsPermission(permission, details.requestingUrl)));
        session.defaultSession.setPermissionCheckHandler((_contents, permission, requestingOrigin) => allowsPermission(permission, requestingOrigin));
        buildMenu();
        fs.mkdirSync(app.getPath("userData"), { recursive: true });
        createWindow(services);
    });
    app.on("web-contents-created", (_event, contents) => {
        contents.on("will-attach-webview", (event) => event.preventDefault());
    });
    app.on("window-all-closed", () => app.quit());
    // the quit waits for the services: a reply in progress is saved, as far as it came, before the engine goes
    let quitting = false;
    app.on("will-quit", (event) => {
        event.preventDefault();
        if (quitting) return;
        quitting = true;
        void services.dispose().finally(() => app.exit(0));
    });
}
