// Keyboard shortcuts. Browser-reserved keys (Ctrl+N, Ctrl+T) are avoided, so
// the same shortcuts work in Chromium and in Electron.
import type { ApiEvent } from "../../src-main/api/contract.ts";

export type Command = Extract<ApiEvent, { type: "command" }>["command"];

// Ctrl (Cmd on macOS) + Shift + O: new chat · Ctrl/Cmd + ,: settings · Ctrl/Cmd + L: focus the input · Escape: stop the reply.
export function commandForKey(event: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "shiftKey" | "altKey">): Command | null {
    const mod = event.ctrlKey || event.metaKey;
    if (event.key === "Escape" && !mod && !event.shiftKey && !event.altKey) return "stop";
    if (!mod || event.altKey) return null;
    if (event.shiftKey && event.key.toLowerCase() === "o") return "new-chat";
    if (!event.shiftKey && event.key === ",") return "settings";
    if (!event.shiftKey && event.key.toLowerCase() === "l") return "focus-input";
    return null;
}
