import { create } from "zustand";
import type { Settings, SystemMemory } from "../../../src-main/api/contract.ts";

interface SettingsState {
    settings: Settings | null;
    memory: SystemMemory | null;
}

export const useSettings = create<SettingsState>()(() => ({ settings: null, memory: null }));
