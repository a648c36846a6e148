import { create } from "zustand";
import type { RunSettings, Settings, SystemMemory } from "../../../src-main/api/contract.ts";

interface SettingsState {
    settings: Settings | null;
    memory: SystemMemory | null;
}

export const useSettings = create<SettingsState>()(() => ({ settings: null, memory: null }));

// The run settings a model gets unless a chat overrides them.
export function modelRun(settings: Settings, modelId: string | null): RunSettings {
    return (modelId !== null ? settings.modelDefaults[modelId] : undefined) ?? settings.defaultRun;
}
