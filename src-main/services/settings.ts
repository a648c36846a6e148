// App settings, persisted crash-safely in the app folder.
import fs from "node:fs";
import path from "node:path";
import { settingsSchema, type Settings, type SettingsPatch } from "../api/contract.ts";
import { RequestError } from "./errors.ts";
import { readJson, writeJsonAtomic } from "./json-file.ts";

export function defaultSettings(appDir: string, threads: number): Settings {
    return {
        theme: "system",
        threads,
        gpuLayers: 0,
        dataDir: appDir,
        defaultRun: { cacheMode: "kv-f16", contextSize: 2048, baseLayers: -1 },
        memoryBudgetPercent: 50,
        memoryBudgetMiB: 0,
        modelDefaults: {},
        defaultSystemPrompt: "You are a helpful assistant.",
        defaultSampling: { temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 512, seed: null },
    };
}

export class SettingsStore {
    private readonly file: string;
    private settings: Settings;

    constructor(appDir: string, threads: number) {
        this.file = path.join(appDir, "settings.json");
        const defaults = defaultSettings(appDir, threads);
        // fields a newer version added take their defaults
        this.settings = { ...defaults, ...readJson(this.file, settingsSchema.partial()) };
    }

    get(): Settings {
        return this.settings;
    }

    update(patch: SettingsPatch): Settings {
        if (patch.dataDir !== undefined) {
            try {
                fs.mkdirSync(patch.dataDir, { recursive: true });
                fs.accessSync(patch.dataDir, fs.constants.W_OK);
            } catch (error) {
                throw new RequestError("bad-request", `The folder ${patch.dataDir} cannot be used for models: ${(error as Error).message}. Choose a folder you can write to.`);
            }
        }
        // built from entries, never by assignment: a model id may be any own key, "constructor" included
        const modelDefaults = Object.fromEntries(Object.entries({ ...this.settings.modelDefaults, ...patch.modelDefaults })
            .flatMap(([modelId, run]) => run === null ? [] : [[modelId, run]]));
        // memory changes only once the file has
        this.settings = writeJsonAtomic(this.file, settingsSchema, { ...this.settings, ...patch, modelDefaults });
        return this.settings;
    }
}
