import { Engine } from "./src-main/engine/engine.ts";
const engine = await Engine.start({ maxThreads: 2 });
const model = await engine.loadModel(process.argv[2]!);
for (const mode of process.argv.slice(3)) {
    const context = await model.createContext({ cacheMode: mode as never, contextSize: 2048 });
    const chat = context.chat();
    const t = performance.now();
    const r = await chat.reply("", [], "What is the capital of France?", { temperature: 0, topP: 1, topK: 1, maxTokens: 48, seed: 1 }, () => {}, new AbortController().signal);
    console.log(mode, ((performance.now() - t) / 1000).toFixed(1), "s:", JSON.stringify(r.text));
    chat.dispose(); await context.dispose();
}
await model.dispose(); await engine.dispose();
