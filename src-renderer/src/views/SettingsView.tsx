import { useEffect, useId, useState } from "react";
import type { ModeCheck, ModeEstimate, RunSettings, Settings, Theme } from "../../../src-main/api/contract.ts";
import { qualityBudgetText, speedAt } from "../../../src-main/api/mode-advice.ts";
import { cacheModes, cacheModeSpecs } from "../../../src-main/api/cache-modes.ts";
import { modelDefault, resolveRunSettings } from "../../../src-main/api/run-settings.ts";
import { call, refreshMemory, setModelDefault, updateSettings } from "../actions.ts";
import { NumberField, SamplingFields, TextField } from "../components/Fields.tsx";
import { formatBytes, mib } from "../components/format.ts";
import { ModeSelect, type ModeOption } from "../components/ModeSelect.tsx";
import { useModels } from "../store/models.ts";
import { useSettings } from "../store/settings.ts";

// Without a model the engine cannot judge a mode, so every mode is offered with what it is.
const genericModes: ModeOption[] = cacheModes.map((mode) => {
    const spec = cacheModeSpecs[mode];
    const note = spec.kind === "kv" ? `llama.cpp's KV cache (${spec.type})` : `XQuant, ${spec.bits} bits, ${spec.variant === "x" ? "caches X" : spec.variant}`;
    return { mode, available: true, recommended: false, note };
});

function GeneralSettings({ settings }: { settings: Settings }) {
    const [draft, setDraft] = useState(settings);
    const themeId = useId();
    const set = <K extends keyof Settings>(key: K) => (value: Settings[K]) => setDraft({ ...draft, [key]: value });
    return (
        <form className="panel" aria-label="General settings" onSubmit={(event) => {
            event.preventDefault();
            const { threads, gpuLayers, memoryBudgetPercent, memoryBudgetMiB, dataDir, defaultSystemPrompt, defaultSampling } = draft;
            void updateSettings({ threads, gpuLayers, memoryBudgetPercent, memoryBudgetMiB, dataDir, defaultSystemPrompt, defaultSampling });
        }}>
            <h3>General</h3>
            <div className="field">
                <label htmlFor={themeId}>Theme</label>
                {/* the theme applies at once; the rest waits for Save */}
                <select id={themeId} data-testid="theme-select" value={settings.theme} onChange={(event) => void updateSettings({ theme: event.target.value as Theme })}>
                    <option value="system">System</option>
                    <option value="light">Light</option>
                    <option value="dark">Dark</option>
                </select>
            </div>
            <NumberField label="Threads (0 = automatic)" value={draft.threads} min={0} onChange={set("threads")} testId="threads" />
            <NumberField label="GPU layers (-1 = all that fit)" value={draft.gpuLayers} min={-1} onChange={set("gpuLayers")} testId="gpu-layers" />
            <NumberField label="Memory budget (% of free RAM, or VRAM with GPU layers): what a check's advice counts as fitting" value={draft.memoryBudgetPercent} min={1} max={100} onChange={set("memoryBudgetPercent")} testId="memory-budget" />
            <NumberField label="Or a fixed memory budget in MiB (0 = the share above): what fits in a check's advice and in auto mode" value={draft.memoryBudgetMiB} min={0} onChange={set("memoryBudgetMiB")} testId="memory-budget-mib" />
            <TextField label="Models folder (downloads and imports go to its models/ subfolder)" value={draft.dataDir} onChange={set("dataDir")} testId="data-dir" />
            <TextField label="Default system prompt for new chats" multiline value={draft.defaultSystemPrompt} onChange={set("defaultSystemPrompt")} />
            <SamplingFields value={draft.defaultSampling} onChange={set("defaultSampling")} />
            <button type="submit" className="primary" data-testid="save-settings">Save</button>
        </form>
    );
}

function FitTable({ estimates, contextSize }: { estimates: ModeEstimate[]; contextSize: number }) {
    const memory = useSettings((state) => state.memory);
    return (
        <>
            <p>
                Free RAM: <strong data-testid="free-ram">{memory ? formatBytes(memory.freeRamBytes) : "unknown"}</strong> of {memory ? formatBytes(memory.totalRamBytes) : "?"}
                {memory?.freeVramBytes != null && <> · free VRAM {formatBytes(memory.freeVramBytes)}</>}{" "}
                <button type="button" onClick={() => void refreshMemory()}>Refresh</button>
            </p>
            <table data-testid="fit-table">
                <caption>
                    Will it fit? Weights + cache + compute buffers (measured by creating the context) at this context size.
                    Quality and speed as this model's check measured them; ★: within the quality budget ({qualityBudgetText}), the fastest that fits
                    (before a check: kv-f16, the reference).
                </caption>
                <thead><tr><th scope="col">Mode</th><th scope="col">Cache MiB</th><th scope="col">Compute MiB</th><th scope="col">Total MiB</th><th scope="col">Fits</th><th scope="col">KLD · ΔPPL</th><th scope="col">Decode tok/s</th></tr></thead>
                <tbody>
                    {estimates.filter((estimate) => estimate.available).map((estimate) => (
                        <tr key={estimate.mode} data-testid={`fit-${estimate.mode}`}>
                            <td>{estimate.mode}{estimate.recommended ? " ★" : ""}</td>
                            <td>{mib(estimate.cacheBytes).toFixed(1)}</td>
                            <td data-testid={`fit-compute-${estimate.mode}`}>{estimate.computeBytes === null ? "—" : mib(estimate.computeBytes).toFixed(1)}</td>
                            <td>{mib(estimate.totalBytes).toFixed(0)}</td>
                            <td aria-label={estimate.fits ? "fits" : "does not fit"}>
                                {estimate.fits ? "✓" : "✗"}
                                {/* not measured: the engine's reason */}
                                {estimate.computeBytes === null && <span className="muted small"> {estimate.explanation}</span>}
                            </td>
                            <td data-testid={`fit-quality-${estimate.mode}`}>{estimate.measured ? `${estimate.measured.kld.toExponential(2)} · ${estimate.measured.deltaPplPct.toFixed(2)}%` : "not measured"}</td>
                            <td>{estimate.measured ? measuredSpeed(estimate.measured, contextSize) : "not measured"}</td>
                        </tr>
                    ))}
                </tbody>
            </table>
        </>
    );
}

function measuredSpeed(measured: ModeCheck, contextSize: number): string {
    const speed = speedAt(measured, contextSize);
    return speed === undefined ? "–" : `${speed.tokensPerSecond.toFixed(1)} at ${speed.depth}`;
}

// How long the estimate waits for the context size or base layers to settle.
const estimateDelayMs = 300;

// The run settings of one model (or the global default), with the engine's
// estimate of each mode at the chosen context size.
function RunSettingsEditor({ settings, modelId }: { settings: Settings; modelId: string | null }) {
    const trainedContext = useModels((state) => state.models.find((model) => model.id === modelId)?.metadata.contextLength);
    const saved = resolveRunSettings(settings, modelId, null, trainedContext);
    const [draft, setDraft] = useState<RunSettings>(saved);
    const [estimates, setEstimates] = useState<ModeEstimate[] | null>(null);
    useEffect(() => {
        if (modelId === null) return setEstimates(null);
        let current = true;
        // an estimate creates each mode's context once: not for every keystroke of a number being typed
        const timer = setTimeout(() => {
            void call("estimateModes", { modelId, contextSize: draft.contextSize, baseLayers: draft.baseLayers }).then((result) => current && setEstimates(result ?? null));
        }, estimateDelayMs);
        return () => {
            current = false;
            clearTimeout(timer);
        };
    }, [modelId, draft.contextSize, draft.baseLayers]);
    const options = estimates?.map((estimate) => ({ ...estimate, note: estimate.explanation })) ?? genericModes;
    const save = () => (modelId === null ? updateSettings({ defaultRun: draft }) : setModelDefault(modelId, draft));
    return (
        <form onSubmit={(event) => { event.preventDefault(); void save(); }}>
            <ModeSelect label="Cache mode (the bits are part of the mode)" options={options} value={draft.cacheMode} onChange={(mode) => mode && setDraft({ ...draft, cacheMode: mode })} />
            <NumberField label="Context size (tokens)" value={draft.contextSize} min={256} step={256} onChange={(contextSize) => setDraft({ ...draft, contextSize })} testId="context-size" />
            <NumberField label="XQuant base layers at 4 bits (-1 = default)" value={draft.baseLayers} min={-1} onChange={(baseLayers) => setDraft({ ...draft, baseLayers })} testId="base-layers" />
            <p className="muted small">Chats use this unless they override the cache mode in their own settings panel. Changing it reloads an open session of this model, re-evaluating its history.</p>
            <div className="row">
                <button type="submit" className="primary" data-testid="save-run-settings">{modelId === null ? "Save as the default for all models" : "Save as this model's default"}</button>
                {modelId !== null && modelDefault(settings, modelId) && (
                    <button type="button" onClick={() => void setModelDefault(modelId, null).then(() => setDraft(settings.defaultRun))}>Use the global default</button>
                )}
            </div>
            {estimates ? <FitTable estimates={estimates} contextSize={draft.contextSize} /> : <p className="muted">Pick a model to see whether each mode fits in memory.</p>}
        </form>
    );
}

export function SettingsView() {
    const settings = useSettings((state) => state.settings);
    const models = useModels((state) => state.models);
    const [modelId, setModelId] = useState<string | null>(models[0]?.id ?? null);
    const selectId = useId();
    if (!settings) return <p className="empty">Settings are not loaded yet.</p>;
    return (
        <div className="page">
            <h2>Settings</h2>
            <section className="panel" aria-labelledby="run-title">
                <h3 id="run-title">Cache mode and context</h3>
                <div className="field">
                    <label htmlFor={selectId}>Model</label>
                    <select id={selectId} data-testid="settings-model-select" value={modelId ?? ""} onChange={(event) => setModelId(event.target.value || null)}>
                        <option value="">All models (global default)</option>
                        {models.map((model) => <option key={model.id} value={model.id}>{model.metadata.name || model.fileName}</option>)}
                    </select>
                </div>
                <RunSettingsEditor key={modelId ?? ""} settings={settings} modelId={modelId} />
            </section>
            <GeneralSettings settings={settings} />
        </div>
    );
}
