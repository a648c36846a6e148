// App commands: from the Electron menu (as "command" events) and from the
// keyboard in either front door (keys.ts).
import type { AppCommand } from "../../src-main/api/contract.ts";
import { newChat, stopGeneration } from "./actions.ts";
import { useChats } from "./store/chats.ts";
import { useStreaming } from "./store/streaming.ts";
import { useUi } from "./store/ui.ts";

function focusInput(): void {
    useUi.getState().setView("chat");
    // the chat view renders its input on the next frame after a view change
    requestAnimationFrame(() => document.querySelector<HTMLTextAreaElement>('[data-testid="chat-input"]')?.focus());
}

export function runCommand(command: AppCommand): void {
    switch (command) {
        case "new-chat":
            void newChat().then(focusInput);
            break;
        case "settings":
            useUi.getState().setView("settings");
            break;
        case "focus-input":
            focusInput();
            break;
        case "stop": {
            const chatId = useChats.getState().current?.id;
            if (chatId && useStreaming.getState().reply !== null) void stopGeneration(chatId);
            break;
        }
    }
}
