// Which run settings a chat's model gets: one rule for the services, the
// OpenAI-compatible route and the settings screens.
import type { RunSettings, Settings } from "./contract.ts";

// The chat's own override, else the model's default, else the global default.
export function resolveRunSettings(settings: Pick<Settings, "defaultRun" | "modelDefaults">, modelId: string | null, runOverride: RunSettings | null = null): RunSettings {
    return runOverride ?? (modelId === null ? undefined : settings.modelDefaults[modelId]) ?? settings.defaultRun;
}
