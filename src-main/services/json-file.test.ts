import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { fillDisk, shortWrites } from "../../test-support/disk-faults.ts";
import type { Chat } from "../api/contract.ts";
import { ChatStore } from "./chats.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";
import { SettingsStore } from "./settings.ts";

const messagesFile = z.object({ messages: z.array(z.string()) });

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-json-"));

const emptyChat = (id: string): Chat => {
    const now = Date.now();
    return { id, title: "Kept", createdAt: now, updatedAt: now, modelId: null, systemPrompt: "", sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: null }, runOverride: null, messages: [], modeSwitches: [] };
};

describe("crash-safe JSON files", () => {
    it("replaces a file whole and leaves no temp files behind", () => {
        const file = path.join(tempDir(), "nested", "chat.json");
        writeJsonAtomic(file, messagesFile, { messages: ["one"] });
        writeJsonAtomic(file, messagesFile, { messages: ["one", "two"] });
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
        const chat = chats.save(emptyChat("good"));
        fs.writeFileSync(path.join(appDir, "chats", "bad.json"), JSON.stringify({ ...chat, id: "bad", messages: [{ role: "robot" }] }));
        expect(new ChatStore(appDir).list().map((summary) => summary.id)).toEqual(["good"]);
        expect(fs.existsSync(path.join(appDir, "chats", "bad.json.damaged-1"))).toBe(true);
    });

    it("a chat whose id names another file is kept aside, so it can never overwrite settings.json", () => {
        const appDir = tempDir();
        new SettingsStore(appDir, 2).update({ theme: "dark" });
        const settingsFile = fs.readFileSync(path.join(appDir, "settings.json"), "utf8");
        const chatsDir = path.join(appDir, "chats");
        fs.mkdirSync(chatsDir);
        fs.writeFileSync(path.join(chatsDir, "evil.json"), JSON.stringify(emptyChat("../settings")));
        fs.writeFileSync(path.join(chatsDir, "moved.json"), JSON.stringify(emptyChat("elsewhere")));
        const chats = new ChatStore(appDir);
        expect(chats.list()).toEqual([]);
        expect(() => chats.get("../settings")).toThrow(/There is no chat/);
        expect(fs.readdirSync(chatsDir).sort()).toEqual(["evil.json.damaged-1", "moved.json.damaged-1"]);
        expect(fs.readFileSync(path.join(appDir, "settings.json"), "utf8")).toBe(settingsFile);
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
        writeJsonAtomic(file, messagesFile, { messages: ["saved"] });
        expect(readJson(file, messagesFile)).toEqual({ messages: ["saved"] });
    });

    it("elsewhere logs a folder fsync refused after the rename, and the chat in memory is the one on disk", () => {
        const appDir = tempDir();
        const chats = new ChatStore(appDir);
        const chat = chats.save(emptyChat("c1"));
        refuseFolderSync(path.join(appDir, "chats"));
        Object.defineProperty(process, "platform", { value: "linux" });
        const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
        const renamed = chats.save({ ...chat, title: "Renamed" });
        expect(warn).toHaveBeenCalledWith(expect.stringContaining("could not be synced"));
        expect(chats.get("c1")).toEqual(renamed);
        expect(new ChatStore(appDir).get("c1")).toEqual(renamed);
    });
});

describe("saving on a nearly full or busy disk", () => {
    afterEach(() => vi.restoreAllMocks());
    const oldText = JSON.stringify({ messages: ["old"] }, null, 1);

    it("writes the rest of a short write, so the whole file is saved", () => {
        const file = path.join(tempDir(), "chat.json");
        shortWrites(7);
        writeJsonAtomic(file, messagesFile, { messages: ["a reply that takes several writes"] });
        vi.restoreAllMocks();
        expect(readJson(file, messagesFile)).toEqual({ messages: ["a reply that takes several writes"] });
    });

    it("keeps the old file, and no temp file, when the disk fills up part-way through a save", () => {
        const dir = tempDir();
        const file = path.join(dir, "chat.json");
        fs.writeFileSync(file, oldText);
        fillDisk(10);
        expect(() => writeJsonAtomic(file, messagesFile, { messages: ["new and longer than ten bytes"] })).toThrow(/ENOSPC/);
        vi.restoreAllMocks();
        expect(fs.readFileSync(file, "utf8")).toBe(oldText);
        expect(fs.readdirSync(dir)).toEqual(["chat.json"]);
    });

    it.each(["EPERM", "EBUSY"])("retries a rename refused with %s (a scanner holding the file on Windows)", (code) => {
        const file = path.join(tempDir(), "chat.json");
        const { renameSync } = fs;
        let refusals = 2;
        vi.spyOn(fs, "renameSync").mockImplementation((from, to) => {
            if (refusals-- > 0) throw Object.assign(new Error(`${code}: rename`), { code });
            renameSync(from, to);
        });
        writeJsonAtomic(file, messagesFile, { messages: ["the finished reply"] });
        expect(readJson(file, messagesFile)).toEqual({ messages: ["the finished reply"] });
    });

    it("gives up on a rename that stays refused, keeping the old file and no temp file", () => {
        const dir = tempDir();
        const file = path.join(dir, "chat.json");
        fs.writeFileSync(file, oldText);
        const rename = vi.spyOn(fs, "renameSync").mockImplementation(() => {
            throw Object.assign(new Error("EBUSY: rename"), { code: "EBUSY" });
        });
        expect(() => writeJsonAtomic(file, messagesFile, { messages: ["new"] })).toThrow(/EBUSY/);
        expect(rename.mock.calls.length).toBeGreaterThan(1);
        expect(fs.readFileSync(file, "utf8")).toBe(oldText);
        expect(fs.readdirSync(dir)).toEqual(["chat.json"]);
    });

    it("refuses to save what its schema would not read back, and keeps the old file", () => {
        const file = path.join(tempDir(), "chat.json");
        fs.writeFileSync(file, oldText);
        expect(() => writeJsonAtomic(file, messagesFile, { messages: [42 as unknown as string] })).toThrow(/chat.json was not saved: "messages.0"/);
        expect(fs.readFileSync(file, "utf8")).toBe(oldText);
    });

    it("changes settings in memory only once they are on disk", () => {
        const appDir = tempDir();
        const settings = new SettingsStore(appDir, 2);
        settings.update({ theme: "dark" });
        fillDisk();
        expect(() => settings.update({ theme: "light" })).toThrow(/ENOSPC/);
        vi.restoreAllMocks();
        expect(settings.get().theme).toBe("dark");
        expect(new SettingsStore(appDir, 2).get().theme).toBe("dark");
    });
});
