// The Electron shell's security decisions, as pure functions (no electron import,
// so they are tested everywhere). The page loads from the app's own scheme,
// app://xquant/, so that 'self' in its CSP means the app's files and no other
// file on disk; IPC and permissions are granted to that origin only.
import path from "node:path";

export const appScheme = "app";
const appHost = "xquant";
export const appEntryUrl = `${appScheme}://${appHost}/index.html`;

function isAppUrl(url: string | undefined): boolean {
    if (url === undefined || url === "") return false;
    try {
        const parsed = new URL(url);
        return parsed.protocol === `${appScheme}:` && parsed.host === appHost;
    } catch {
        return false;
    }
}

// Whether an IPC request comes from a frame showing the app's own page (Electron's
// event.senderFrame.url); a frame of any other origin, or none, is refused.
export const isAppFrame = (frameUrl: string | undefined): boolean => isAppUrl(frameUrl);

// The only permission the page needs: writing plain text to the clipboard (the Copy buttons).
const allowedPermissions = new Set(["clipboard-sanitized-write"]);

export function allowsPermission(permission: string, requestingUrl: string | undefined): boolean {
    return allowedPermissions.has(permission) && isAppUrl(requestingUrl);
}

// The file under `rendererDir` that an app:// URL names, or null for anything
// else: another scheme or host, bad percent-encoding, or a path that leaves the folder.
export function resolveAppPath(rendererDir: string, url: string): string | null {
    if (!isAppUrl(url)) return null;
    let pathname: string;
    try {
        pathname = decodeURIComponent(new URL(url).pathname);
    } catch {
        return null;
    }
    if (pathname.includes("\0")) return null;
    const root = path.resolve(rendererDir);
    const file = path.resolve(root, `.${pathname}`);
    return file.startsWith(`${root}${path.sep}`) ? file : null;
}
