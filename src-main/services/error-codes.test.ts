// Every engine error code, raised in a real engine process, reaches the API unchanged: host.ts
// → RemoteEngine → toRequestError (the one mapping every request's failure goes through) →
// the request's result. Real engine, real fixture models; each fault is a real condition (a
// truncated file, a context too large, a disposed handle, a killed or stopped process)
// except the few that test-support/faulty-engine-host.ts raises.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fixturePath } from "../../fixtures/fixtures.ts";
import { repoRoot } from "../../native/paths.ts";
import { cacheBytesPerCell } from "../api/cache-modes.ts";
import { apiErrorCodes, type ApiError, type ApiResult } from "../api/contract.ts";
import { engineErrorCodes, type EngineErrorCode } from "../engine/errors.ts";
import { engineProcessMarker } from "../engine/protocol.ts";
import { forkEngine } from "../engine/remote.ts";
import { toRequestError } from "./errors.ts";
import { Services, type ServicesOptions } from "./services.ts";

const faultyEngineHost = path.join(repoRoot, "test-support", "faulty-engine-host.ts");
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "xq-error-codes-"));

let opened: Services[] = [];
const open = (options: ServicesOptions = {}): Services => {
    const services = new Services({ appDir: tempDir(), maxThreads: 2, ...options });
    opened.push(services);
    return services;
};

// The error of a request that must fail.
async function refusal(result: Promise<ApiResult<unknown>>): Promise<ApiError> {
    const answer = await result;
    if (answer.ok) throw new Error("The request succeeded");
    return answer.error;
}

// The API error that a failed engine call becomes.
async function engineRefusal(call: Promise<unknown>): Promise<ApiError> {
    const error = await call.then(() => null, (caught: unknown) => caught);
    if (error === null) throw new Error("The engine call succeeded");
    return toRequestError(error).error;
}

// The services' own engine process, with a fixture model loaded in it.
async function loadedModel() {
    const engine = await open().engine();
    return engine.loadModel(fixturePath("mha-random-f16"));
}

// The services' first request, to an engine process whose start fails with `code`.
const faultyStart = (code: EngineErrorCode): Promise<ApiError> => refusal(open({
    spawnEngine: (_module, env) => forkEngine(faultyEngineHost, { ...env, [engineProcessMarker]: "", XQ_ENGINE_FAULT: code }),
}).handleRequest("getEngineInfo", {}));

const provoke: Record<EngineErrorCode, () => Promise<ApiError>> = {
    "native-not-built": () => faultyStart("native-not-built"),
    "stock-binary": () => faultyStart("stock-binary"),
    "state-mode-mismatch": async () => {
        const error = await faultyStart("state-mode-mismatch");
        // the engine's own check refused the state, not the faulty host
        expect(error.message).toContain("saved in cache mode xq-4");
        return error;
    },
    "disk-full": () => faultyStart("disk-full"),
    "model-not-found": async () => engineRefusal((await open().engine()).loadModel(path.join(tempDir(), "gone.gguf"))),
    "model-invalid": async () => {
        const file = path.join(tempDir(), "truncated.gguf");
        fs.writeFileSync(file, fs.readFileSync(fixturePath("mha-random-f16")).subarray(0, 100_000));
        return engineRefusal((await open().engine()).readGgufMetadata(file));
    },
    // the latent modes are for GQA models
    "unsupported-architecture": async () => engineRefusal((await loadedModel()).createContext({ cacheMode: "xql-4", contextSize: 512 })),
    // llama.cpp takes at most 256 sequences
    "context-failed": async () => engineRefusal((await loadedModel()).createContext({ cacheMode: "kv-f16", contextSize: 512, sequences: 300 })),
    "context-too-large": async () => {
        const model = await loadedModel();
        const contextSize = Math.ceil((2 * os.totalmem()) / cacheBytesPerCell(model.shape, "xq-4") / 256) * 256;
        return engineRefusal(model.createContext({ cacheMode: "xq-4", contextSize }));
    },
    "handle-disposed": async () => {
        const context = await (await loadedModel()).createContext({ cacheMode: "kv-f16", contextSize: 256 });
        await context.dispose();
        return engineRefusal(context.cacheStats());
    },
    // a bug: an argument of the wrong type reaches node-llama-cpp
    "engine-internal": async () => engineRefusal((await loadedModel()).tokenize(5 as unknown as string)),
    "engine-stopped": async () => {
        const services = open();
        const { pid } = await services.engine();
        const memory = services.handleRequest("getSystemMemory", {});
        // the request's engine call is sent before the process's exit is heard
        process.kill(pid!, "SIGKILL");
        return refusal(memory);
    },
    "engine-timeout": async () => {
        const services = open({ engineTimeouts: { callMs: 5000 } });
        process.kill((await services.engine()).pid!, "SIGSTOP");
        return refusal(services.handleRequest("getSystemMemory", {}));
    },
};

describe("the engine's error codes", () => {
    afterEach(async () => {
        await Promise.all(opened.map((services) => services.dispose()));
        opened = [];
    });

    it("are all API error codes", () => {
        expect(apiErrorCodes).toEqual(expect.arrayContaining([...engineErrorCodes]));
    });

    it.each(engineErrorCodes)("%s reaches the API unchanged", async (code) => {
        expect(await provoke[code]()).toEqual({ code, message: expect.not.stringMatching(/^Something went wrong/) });
    });
});
