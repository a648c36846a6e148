// Chats, one crash-safe JSON file each, restored after a restart.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chatSummary } from "../api/chat-summary.ts";
import { chatSchema, type Chat, type ChatSummary } from "../api/contract.ts";
import { RequestError } from "./errors.ts";
import { readJson, removeLeftoverTempFiles, writeJsonAtomic } from "./json-file.ts";

export const newId = (): string => crypto.randomUUID();

export class ChatStore {
    private readonly dir: string;
    private readonly chats = new Map<string, Chat>();

    constructor(appDir: string) {
        this.dir = path.join(appDir, "chats");
        fs.mkdirSync(this.dir, { recursive: true });
        removeLeftoverTempFiles(this.dir);
        for (const file of fs.readdirSync(this.dir)) {
            if (!file.endsWith(".json")) continue;
            const chat = readJson(path.join(this.dir, file), chatSchema);
            if (chat !== null) this.chats.set(chat.id, chat);
        }
    }

    list(): ChatSummary[] {
        return [...this.chats.values()]
            .sort((a, b) => b.updatedAt - a.updatedAt)
            .map(chatSummary);
    }

    get(chatId: string): Chat {
        const chat = this.chats.get(chatId);
        if (chat === undefined) throw new RequestError("not-found", `There is no chat ${chatId}; it may have been deleted.`);
        return chat;
    }

    // Saves a changed chat; the file is replaced atomically.
    save(chat: Chat): Chat {
        const saved = { ...chat, updatedAt: Date.now() };
        writeJsonAtomic(path.join(this.dir, `${chat.id}.json`), saved);
        this.chats.set(chat.id, saved);
        return saved;
    }

    delete(chatId: string): void {
        this.get(chatId);
        fs.rmSync(path.join(this.dir, `${chatId}.json`), { force: true });
        this.chats.delete(chatId);
    }
}
