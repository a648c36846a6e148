// An engine process whose start fails with the engine error named in XQ_ENGINE_FAULT, for
// the codes that no request provokes on a working machine. A state loaded in another cache
// mode is provoked for real; a missing native build, node-llama-cpp's stock binary (which
// stock-binary.test.ts refuses for real: only the engine may load it) and a full disk during
// a download are raised as the engine raises them.
// Forked without the engine process marker, so that host.ts does not serve on its own.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fixturePath } from "../fixtures/fixtures.ts";
import { Engine } from "../src-main/engine/engine.ts";
import { EngineError, type EngineErrorCode } from "../src-main/engine/errors.ts";
import { engineImplementations, serve } from "../src-main/engine/host.ts";

async function fail(code: EngineErrorCode): Promise<never> {
    if (code === "state-mode-mismatch") {
        const engine = await Engine.start({ maxThreads: 2 });
        const model = await engine.loadModel(fixturePath("mha-random-f16"));
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xq-state-")), "state.bin");
        await (await model.createContext({ cacheMode: "xq-4", contextSize: 256 })).saveState(file);
        await (await model.createContext({ cacheMode: "kv-f16", contextSize: 256 })).loadState(file);
    }
    throw new EngineError(code, `The engine process raised ${code}`);
}

serve({ ...engineImplementations, start: () => fail(process.env.XQ_ENGINE_FAULT as EngineErrorCode) });
