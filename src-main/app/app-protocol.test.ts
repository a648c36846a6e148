import path from "node:path";
import { describe, expect, it } from "vitest";
import { allowsPermission, appEntryUrl, isAppFrame, resolveAppPath } from "./app-protocol.ts";

const rendererDir = path.resolve("/opt/xquant/dist-renderer");

describe("the Electron shell's security decisions", () => {
    it("serves app:// paths from the renderer folder only, refusing traversal", () => {
        expect(resolveAppPath(rendererDir, appEntryUrl)).toBe(path.join(rendererDir, "index.html"));
        expect(resolveAppPath(rendererDir, "app://xquant/assets/index-1.js")).toBe(path.join(rendererDir, "assets", "index-1.js"));
        // whatever a path tries, what it names stays inside the folder
        for (const url of ["app://xquant/../secret.txt", "app://xquant/a/../../../secret.txt", "app://xquant/..%5c..%5csecret.txt", "app://xquant/%2e%2e/%2e%2e/etc/passwd", "app://xquant/assets/..%2f..%2f..%2fetc%2fpasswd"]) {
            const resolved = resolveAppPath(rendererDir, url);
            expect(resolved === null || resolved.startsWith(`${rendererDir}${path.sep}`), url).toBe(true);
        }
        // encoded slashes, which the URL parser leaves alone, would leave it: refused
        expect(resolveAppPath(rendererDir, "app://xquant/assets/..%2f..%2f..%2fetc%2fpasswd")).toBeNull();
        for (const url of ["app://xquant/", "app://xquant/%", "app://xquant/index.html%00.js", "app://other/index.html", "file:///opt/xquant/dist-renderer/index.html", "not a url"]) {
            expect(resolveAppPath(rendererDir, url), url).toBeNull();
        }
    });

    it("answers IPC only from a frame of the app's own page", () => {
        expect(isAppFrame("app://xquant/index.html")).toBe(true);
        expect(isAppFrame("app://xquant/index.html#/settings")).toBe(true);
        for (const url of ["https://evil.example/", "file:///opt/xquant/dist-renderer/index.html", "app://evil/index.html", "about:blank", "", undefined]) {
            expect(isAppFrame(url), String(url)).toBe(false);
        }
    });

    it("grants the sanitized clipboard write to the app's page and nothing else", () => {
        expect(allowsPermission("clipboard-sanitized-write", appEntryUrl)).toBe(true);
        expect(allowsPermission("clipboard-sanitized-write", "https://evil.example/")).toBe(false);
        for (const permission of ["clipboard-read", "media", "geolocation", "notifications", "openExternal"]) {
            expect(allowsPermission(permission, appEntryUrl), permission).toBe(false);
        }
    });
});
