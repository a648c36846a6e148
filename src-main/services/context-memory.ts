// What contexts take besides the weights, as the engine allocated them, by model
// and by everything that shapes them: the "will it fit" estimate creates each
// context once, and the contexts made for chats add theirs as they are created.
import type { ModeRun } from "../api/contract.ts";
import type { ContextMemory, ContextOptions } from "../engine/engine.ts";

// A context made for a chat or a completion: the one rule for how they are created,
// so that a measured context is the one a chat would get.
export function chatContextOptions(run: ModeRun, threads: number): ContextOptions {
    return { cacheMode: run.cacheMode, contextSize: run.contextSize, baseLayers: run.baseLayers, threads };
}

export class ContextMemoryCache {
    // by model id, then by the GPU layers the model was loaded with and the context's options
    private readonly byModel = new Map<string, Map<string, ContextMemory>>();

    private static key(gpuLayers: number, options: ContextOptions): string {
        return JSON.stringify([gpuLayers, options]);
    }

    get(modelId: string, gpuLayers: number, options: ContextOptions): ContextMemory | undefined {
        return this.byModel.get(modelId)?.get(ContextMemoryCache.key(gpuLayers, options));
    }

    record(modelId: string, gpuLayers: number, options: ContextOptions, memory: ContextMemory): void {
        let measured = this.byModel.get(modelId);
        if (measured === undefined) this.byModel.set(modelId, measured = new Map());
        measured.set(ContextMemoryCache.key(gpuLayers, options), memory);
    }

    // A deleted model's id can come back with another file.
    forget(modelId: string): void {
        this.byModel.delete(modelId);
    }
}
