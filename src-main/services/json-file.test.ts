import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readJson, writeJsonAtomic } from "./json-file.ts";
import { SettingsStore } from "./settings.ts";

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-json-"));

describe("crash-safe JSON files", () => {
    it("replaces a file whole and leaves no temp files behind", () => {
        const file = path.join(tempDir(), "nested", "chat.json");
        writeJsonAtomic(file, { messages: ["one"] });
        writeJsonAtomic(file, { messages: ["one", "two"] });
        expect(readJson(file)).toEqual({ messages: ["one", "two"] });
        expect(fs.readdirSync(path.dirname(file))).toEqual(["chat.json"]);
    });

    it("keeps a damaged file aside instead of losing it, and reads it as missing", () => {
        const file = path.join(tempDir(), "settings.json");
        fs.writeFileSync(file, "{\"theme\": \"da");
        expect(readJson(file)).toBeNull();
        expect(fs.readFileSync(`${file}.damaged`, "utf8")).toBe("{\"theme\": \"da");
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
