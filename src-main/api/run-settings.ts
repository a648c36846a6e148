// Which run settings a chat's model gets: one rule for the services, the
// OpenAI-compatible route and the settings screens.
import type { RunSettings, Settings } from "./contract.ts";

// The model's own default, if it has one. Model ids come from file names, so one may be
// "constructor" or "toString": only the record's own keys count, never Object.prototype's.
export function modelDefault(settings: Pick<Settings, "modelDefaults">, modelId: string): RunSettings | undefined {
    return Object.hasOwn(settings.modelDefaults, modelId) ? settings.modelDefaults[modelId] : undefined;
}

// The chat's own override, else the model's default, else the global default. The
// global default's context stops at the model's trained context (trainedContext, 0 if
// unknown): a user asks for more by setting it for the model or the chat.
export function resolveRunSettings(settings: Pick<Settings, "defaultRun" | "modelDefaults">, modelId: string | null, runOverride: RunSettings | null = null, trainedContext = 0): RunSettings {
    const chosen = runOverride ?? (modelId === null ? undefined : modelDefault(settings, modelId));
    if (chosen) return chosen;
    const { defaultRun } = settings;
    return trainedContext > 0 && defaultRun.contextSize > trainedContext ? { ...defaultRun, contextSize: trainedContext } : defaultRun;
}
