import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { ChatStore } from "./chats.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";
import { SettingsStore } from "./settings.ts";

const messagesFile = z.object({ messages: z.array(z.string()) });

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-json-"));

describe("crash-safe JSON files", () => {
    it("replaces a file whole and leaves no temp files behind", () => {
        const file = path.join(tempDir(), "nested", "chat.json");
        writeJsonAtomic(file, { messages: ["one"] });
        writeJsonAtomic(file, { messages: ["one", "two"] });
        expect(readJson(file, messagesFile)).toEqual({ messages: ["one", "two"] });
        expect(fs.readdirSync(path.dirname(file))).toEqual(["chat.json"]);
    });

    it("keeps each damaged file aside under its own number, never over an earlier one", () => {
        const file = path.join(tempDir(), "chat.json");
        fs.writeFileSync(file, "{\"messages\": [\"cut sho");
        expect(readJson(file, messagesFile)).toBeNull();
        fs.writeFileSync(file, "{\"messages\": 42}");
        expect(readJson(file, messagesFile)).toBeNull();
        expect(fs.readFileSync(`${file}.damaged-1`, "utf8")).toBe("{\"messages\": [\"cut sho");
        expect(fs.readFileSync(`${file}.damaged-2`, "utf8")).toBe("{\"messages\": 42}");
        expect(fs.existsSync(file)).toBe(false);
    });

    it("settings of the wrong shape are kept aside and the defaults apply", () => {
        const appDir = tempDir();
        fs.writeFileSync(path.join(appDir, "settings.json"), JSON.stringify({ theme: "dark", threads: "all of them" }));
        expect(new SettingsStore(appDir, 2).get()).toMatchObject({ theme: "system", threads: 2 });
        expect(JSON.parse(fs.readFileSync(path.join(appDir, "settings.json.damaged-1"), "utf8"))).toEqual({ theme: "dark", threads: "all of them" });
    });

    it("a damaged chat is kept aside and the other chats still load", () => {
        const appDir = tempDir();
        const chats = new ChatStore(appDir);
        const now = Date.now();
        const chat = chats.save({ id: "good", title: "Kept", createdAt: now, updatedAt: now, modelId: null, systemPrompt: "", sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: null }, runOverride: null, messages: [] });
        fs.writeFileSync(path.join(appDir, "chats", "bad.json"), JSON.stringify({ ...chat, id: "bad", messages: [{ role: "robot" }] }));
        expect(new ChatStore(appDir).list().map((summary) => summary.id)).toEqual(["good"]);
        expect(fs.existsSync(path.join(appDir, "chats", "bad.json.damaged-1"))).toBe(true);
    });

    it("removes the temp files a killed process left among the chats, and nothing else", () => {
        const appDir = tempDir();
        new ChatStore(appDir);
        const chatsDir = path.join(appDir, "chats");
        fs.writeFileSync(path.join(chatsDir, ".good.json.0123456789ab.tmp"), "{\"id\": \"go");
        fs.writeFileSync(path.join(chatsDir, "notes.tmp"), "mine");
        new ChatStore(appDir);
        expect(fs.readdirSync(chatsDir)).toEqual(["notes.tmp"]);
    });

    it("settings survive a restart, and an unwritable models folder is refused with a next step", () => {
        const appDir = tempDir();
        new SettingsStore(appDir, 2).update({ theme: "dark", modelDefaults: { m: { cacheMode: "xq-4", contextSize: 1024, baseLayers: -1 } } });
        const restored = new SettingsStore(appDir, 2);
        expect(restored.get()).toMatchObject({ theme: "dark", modelDefaults: { m: { cacheMode: "xq-4" } } });
        const blocker = path.join(appDir, "a-file");
        fs.writeFileSync(blocker, "");
        expect(() => restored.update({ dataDir: path.join(blocker, "models") })).toThrow(/Choose a folder you can write to/);
        expect(restored.update({ modelDefaults: { m: null } }).modelDefaults).toEqual({});
    });
});

describe("crash-safe JSON files on Windows", () => {
    const realPlatform = process.platform;
    afterEach(() => {
        vi.restoreAllMocks();
        Object.defineProperty(process, "platform", { value: realPlatform });
    });

    // Makes fsync of the given folder fail the way Windows does (EPERM).
    function refuseFolderSync(dir: string): void {
        const folderFds = new Set<number>();
        const { openSync, fsyncSync } = fs;
        vi.spyOn(fs, "openSync").mockImplementation((...args: Parameters<typeof fs.openSync>) => {
            const fd = openSync(...args);
            if (args[0] === dir) folderFds.add(fd);
            return fd;
        });
        vi.spyOn(fs, "fsyncSync").mockImplementation((fd: number) => {
            if (folderFds.has(fd)) throw Object.assign(new Error("EPERM: operation not permitted, fsync"), { code: "EPERM" });
            fsyncSync(fd);
        });
    }

    it("saves where the platform refuses the folder fsync with EPERM (win32)", () => {
        const dir = tempDir();
        const file = path.join(dir, "chat.json");
        refuseFolderSync(dir);
        Object.defineProperty(process, "platform", { value: "win32" });
        writeJsonAtomic(file, { messages: ["saved"] });
        expect(readJson(file, messagesFile)).toEqual({ messages: ["saved"] });
    });

    it("still reports a failed folder fsync on other platforms", () => {
        const dir = tempDir();
        refuseFolderSync(dir);
        Object.defineProperty(process, "platform", { value: "linux" });
        expect(() => writeJsonAtomic(path.join(dir, "chat.json"), {})).toThrow(/EPERM/);
    });
});
