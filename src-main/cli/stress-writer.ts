// The process that npm run stress (R3) kills with SIGKILL: it saves one chat
// over and over through the app's ChatStore, one message more each time, and
// prints "saved N" once each save has returned.
import { ChatStore } from "../services/chats.ts";

const [appDir, chatId] = process.argv.slice(2) as [string, string];
const chats = new ChatStore(appDir);
const now = Date.now();
let chat = chats.list().some((summary) => summary.id === chatId) ? chats.get(chatId) : chats.save({
    id: chatId, title: "stress", createdAt: now, updatedAt: now, modelId: null, systemPrompt: "",
    sampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 8, seed: null }, runOverride: null, messages: [], modeSwitches: [],
});
for (;;) {
    const n = chat.messages.length + 1;
    chat = chats.save({ ...chat, messages: [...chat.messages, { id: `m${n}`, role: n % 2 ? "user" : "assistant", text: `message ${n} `.repeat(50), createdAt: Date.now(), stats: null }] });
    process.stdout.write(`saved ${n}\n`);
}
