import { describe, expect, it } from "vitest";
import { commandForKey } from "./keys.ts";

const key = (key: string, modifiers: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }> = {}) =>
    ({ key, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...modifiers });

describe("keyboard shortcuts", () => {
    it.each([
        [key("O", { ctrlKey: true, shiftKey: true }), "new-chat"],
        [key("o", { metaKey: true, shiftKey: true }), "new-chat"],
        [key(",", { ctrlKey: true }), "settings"],
        [key("l", { ctrlKey: true }), "focus-input"],
        [key("Escape"), "stop"],
    ] as const)("maps %j to %s", (event, command) => {
        expect(commandForKey(event)).toBe(command);
    });

    it.each([key("o", { ctrlKey: true }), key("n", { ctrlKey: true }), key("Escape", { ctrlKey: true }), key("l"), key("l", { ctrlKey: true, altKey: true })])("ignores %j", (event) => {
        expect(commandForKey(event)).toBeNull();
    });
});
