// Keyboard shortcuts. Browser-reserved keys (Ctrl+N, Ctrl+T) are avoided, so
// the same shortcuts work in Chromium and in Electron.
import type { AppCommand } from "../../src-main/api/contract.ts";

// Ctrl (Cmd on macOS) + Shift + O: new chat · Ctrl/Cmd + ,: settings · Ctrl/Cmd + L: focus the input · Escape: stop the reply.
export function commandForKey(event: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "shiftKey" | "altKey">): AppCommand | null {
    const mod = event.ctrlKey || event.metaKey;
    if (event.key === "Escape" && !mod && !event.shiftKey && !event.altKey) return "stop";
    if (!mod || event.altKey) return null;
    if (event.shiftKey && event.key.toLowerCase() === "o") return "new-chat";
    if (!event.shiftKey && event.key === ",") return "settings";
    if (!event.shiftKey && event.key.toLowerCase() === "l") return "focus-input";
    return null;
}
