import { useRef, useState } from "react";
import type { CacheMode, CompareModeResult, CompareRequest, CompareRun } from "../../../src-main/api/contract.ts";
import { startCompare, stopCompare } from "../actions.ts";
import { BarFigure } from "../components/BarFigure.tsx";
import { NumberField, TextField } from "../components/Fields.tsx";
import { exportChartsPng } from "../components/exportPng.ts";
import { downloadBlob, mib } from "../components/format.ts";
import { useCompare } from "../store/compare.ts";
import { useModels } from "../store/models.ts";

const metrics: { key: string; title: string; value(result: CompareModeResult): number }[] = [
    { key: "cache", title: "Cache MiB", value: (result) => mib(result.cacheBytes) },
    { key: "speed", title: "Tokens/s", value: (result) => result.tokensPerSecond },
    { key: "kld", title: "KLD vs kv-f16", value: (result) => result.kldVsF16 },
];

function CompareCharts({ run }: { run: CompareRun }) {
    const container = useRef<HTMLDivElement>(null);
    const results = run.results.filter((result) => result.error === null);
    const stamp = new Date(run.createdAt).toISOString().replace(/[:.]/g, "-");
    return (
        <section className="panel" aria-label="Comparison results">
            <div className="row">
                <button type="button" data-testid="export-json" onClick={() => downloadBlob(new Blob([JSON.stringify(run, null, 2)], { type: "application/json" }), `compare-${stamp}.json`)}>Export JSON</button>
                <button type="button" data-testid="export-png" disabled={results.length === 0} onClick={() => void exportChartsPng(container.current!, `compare-${stamp}.png`)}>Export PNG</button>
            </div>
            <div className="compare-charts" ref={container} data-testid="compare-chart">
                {metrics.map((metric) => (
                    <BarFigure key={metric.key} title={metric.title} testId={`compare-chart-${metric.key}`} data={results.map((result) => ({ mode: result.mode, value: metric.value(result) }))} />
                ))}
            </div>
            <table data-testid="compare-table">
                <thead><tr><th scope="col">Mode</th><th scope="col">Cache MiB</th><th scope="col">Tokens/s</th><th scope="col">KLD</th><th scope="col">PPL</th><th scope="col">Output or error</th></tr></thead>
                <tbody>
                    {run.results.map((result) => (
                        <tr key={result.mode}>
                            <td>{result.mode}</td>
                            <td>{mib(result.cacheBytes).toFixed(2)}</td>
                            <td>{result.tokensPerSecond.toFixed(1)}</td>
                            <td>{result.kldVsF16.toFixed(4)}</td>
                            <td>{result.perplexity?.toFixed(3) ?? "—"}</td>
                            <td className={result.error ? "error" : "small"}>{result.error ?? result.output ?? ""}</td>
                        </tr>
                    ))}
                </tbody>
            </table>
        </section>
    );
}

function CompareForm() {
    const models = useModels((state) => state.models);
    const [request, setRequest] = useState<CompareRequest>({ modelId: models[0]?.id ?? "", modes: ["kv-f16"], kind: "prompt", text: "Explain what a KV cache is in two sentences.", maxTokens: 64, contextSize: 1024 });
    const model = models.find((entry) => entry.id === request.modelId);
    const toggle = (mode: CacheMode, on: boolean) => setRequest({ ...request, modes: on ? [...request.modes, mode] : request.modes.filter((entry) => entry !== mode) });
    if (models.length === 0) return <p className="empty">No models yet — download one from the catalog or import a .gguf, then compare its cache modes here.</p>;
    return (
        <form className="panel" aria-label="New comparison" onSubmit={(event) => { event.preventDefault(); void startCompare(request); }}>
            <div className="field">
                <label htmlFor="compare-model">Model</label>
                <select id="compare-model" data-testid="compare-model" value={request.modelId} onChange={(event) => setRequest({ ...request, modelId: event.target.value })}>
                    {models.map((entry) => <option key={entry.id} value={entry.id}>{entry.metadata.name || entry.fileName}</option>)}
                </select>
            </div>
            <fieldset className="mode-checks">
                <legend>Cache modes (KLD is measured against kv-f16)</legend>
                {model?.modes.filter((advice) => advice.available).map((advice) => (
                    <label key={advice.mode} title={advice.reason}>
                        <input type="checkbox" data-testid={`compare-mode-${advice.mode}`} checked={request.modes.includes(advice.mode)} onChange={(event) => toggle(advice.mode, event.target.checked)} />
                        {advice.mode}{advice.recommended ? " ★" : ""}
                    </label>
                ))}
            </fieldset>
            <fieldset>
                <legend>Kind</legend>
                <label><input type="radio" name="kind" checked={request.kind === "prompt"} onChange={() => setRequest({ ...request, kind: "prompt" })} /> Generate from a prompt</label>
                <label><input type="radio" name="kind" checked={request.kind === "perplexity"} onChange={() => setRequest({ ...request, kind: "perplexity" })} /> Perplexity of a text</label>
            </fieldset>
            <TextField label={request.kind === "prompt" ? "Prompt" : "Text to score"} multiline value={request.text} onChange={(text) => setRequest({ ...request, text })} testId="compare-text" />
            <NumberField label="Max tokens" value={request.maxTokens} min={1} onChange={(maxTokens) => setRequest({ ...request, maxTokens })} />
            <NumberField label="Context size" value={request.contextSize} min={256} step={256} onChange={(contextSize) => setRequest({ ...request, contextSize })} />
            <button type="submit" className="primary" data-testid="compare-run" disabled={request.modes.length === 0 || !request.text.trim()}>Run</button>
        </form>
    );
}

export function CompareView() {
    const runs = useCompare((state) => state.runs);
    const [selectedId, setSelectedId] = useState<string | null>(null);
    const selected = runs.find((run) => run.id === selectedId) ?? runs[0];
    return (
        <div className="page">
            <h2>Compare cache modes</h2>
            <CompareForm />
            <section aria-labelledby="runs-title">
                <h3 id="runs-title">Runs</h3>
                {runs.length === 0 && <p className="muted">No runs yet. Pick modes above and press Run.</p>}
                <ul className="run-list" data-testid="compare-runs">
                    {runs.map((run) => (
                        <li key={run.id}>
                            <button type="button" aria-current={run.id === selected?.id ? "true" : undefined} onClick={() => setSelectedId(run.id)}>
                                {new Date(run.createdAt).toLocaleString()} · {run.request.kind} · {run.request.modes.join(", ")} · <span data-testid="compare-state">{run.state}</span>
                            </button>
                            {run.state === "running" && <button type="button" data-testid="compare-stop" onClick={() => void stopCompare(run.id)}>Stop</button>}
                        </li>
                    ))}
                </ul>
            </section>
            {selected && <CompareCharts run={selected} />}
        </div>
    );
}
