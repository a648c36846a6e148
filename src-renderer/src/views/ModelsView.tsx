import { useRef, useState } from "react";
import type { CatalogEntry, DownloadInfo, ModeCheck, ModelEntry } from "../../../src-main/api/contract.ts";
import { qualityBudgetText } from "../../../src-main/api/mode-advice.ts";
import { cancelDownload, deleteModel, importModel, pauseDownload, resumeDownload, startCheck, startDownload, stopCheck } from "../actions.ts";
import { TextField } from "../components/Fields.tsx";
import { BarFigure } from "../components/BarFigure.tsx";
import { exportChartsPng } from "../components/exportPng.ts";
import { downloadBlob, formatBytes, formatDuration } from "../components/format.ts";
import { useModels } from "../store/models.ts";

// The check's figures as charts, and both exports: the measured modes as JSON, the charts as PNG.
function CheckCharts({ model }: { model: ModelEntry }) {
    const container = useRef<HTMLDivElement>(null);
    const measured = model.modes.filter((advice) => advice.measured !== null);
    const depth = Math.max(...measured.flatMap((advice) => Object.keys(advice.measured!.decodeTokensPerSecond).map(Number)));
    const name = `check-${model.fileName.replace(/\.gguf$/i, "")}`;
    const exported = {
        modelId: model.id, fileName: model.fileName, sha256: model.sha256, qualityBudget: qualityBudgetText,
        modes: measured.map(({ mode, recommended, withinQualityBudget, measured: figures }) => ({ mode, recommended, withinQualityBudget, ...figures })),
    };
    const bars = (value: (figures: ModeCheck) => number) => measured.map((advice) => ({ mode: advice.mode, value: value(advice.measured!) }));
    return (
        <div className="check-charts">
            <div className="row">
                <button type="button" data-testid="export-check-json" onClick={() => downloadBlob(new Blob([JSON.stringify(exported, null, 2)], { type: "application/json" }), `${name}.json`)}>Export JSON</button>
                <button type="button" data-testid="export-check-png" onClick={() => void exportChartsPng(container.current!, `${name}.png`)}>Export PNG</button>
            </div>
            <div className="compare-charts" ref={container}>
                <BarFigure title="KLD vs kv-f16" testId="check-chart-kld" data={bars((figures) => figures.kld)} />
                <BarFigure title={`Decode tok/s at ${depth} tokens`} testId="check-chart-speed" data={bars((figures) => figures.decodeTokensPerSecond[depth] ?? 0)} />
                <BarFigure title="Cache KiB per token" testId="check-chart-bytes" data={bars((figures) => figures.bytesPerToken / 1024)} />
            </div>
        </div>
    );
}

function ModesTable({ model }: { model: ModelEntry }) {
    const measured = model.modes.some((advice) => advice.measured !== null);
    return (
        <>
            {measured && <CheckCharts model={model} />}
            <table className="modes-table">
                <caption>
                    Cache modes for this model. {measured
                        ? `Recommended: measured within the quality budget (${qualityBudgetText}), the fastest that fits.`
                        : "Quality and speed not measured yet: kv-f16, the reference, is recommended until a check measures the others."}
                </caption>
                <thead><tr><th scope="col">Mode</th><th scope="col">Bytes/token</th><th scope="col">vs f16</th><th scope="col">KLD</th><th scope="col">ΔPPL</th><th scope="col">Max context</th><th scope="col">Advice</th></tr></thead>
                <tbody>
                    {model.modes.map((advice) => (
                        <tr key={advice.mode} className={advice.available ? undefined : "unavailable"} data-recommended={advice.recommended} data-mode={advice.mode}>
                            <td>{advice.mode}{advice.recommended && <span className="badge" title="recommended"> ★ recommended</span>}</td>
                            <td>{formatBytes(advice.bytesPerToken)}</td>
                            <td>{advice.savingVsF16.toFixed(1)}×</td>
                            <td data-testid="mode-kld">{advice.measured ? advice.measured.kld.toExponential(2) : "not measured"}</td>
                            <td data-testid="mode-delta-ppl">{advice.measured ? `${advice.measured.deltaPplPct.toFixed(2)}%` : "not measured"}</td>
                            <td>{advice.measured ? advice.measured.maxContextInBudget : "–"}</td>
                            <td>{advice.available ? advice.reason : `Unavailable: ${advice.reason}`}</td>
                        </tr>
                    ))}
                </tbody>
            </table>
        </>
    );
}

// "Check this model": measures every mode's quality, speed and memory in the generation queue.
function CheckPanel({ modelId }: { modelId: string }) {
    const check = useModels((state) => state.checks[modelId]);
    const active = check?.state === "waiting" || check?.state === "running";
    return (
        <div className="check" data-testid="model-check" data-state={check?.state ?? "none"}>
            {active
                ? <button type="button" data-testid="stop-check" onClick={() => void stopCheck(modelId)}>Stop the check</button>
                : <button type="button" data-testid="start-check" onClick={() => void startCheck(modelId)}>Check this model</button>}
            <span className="muted small"> Measures each cache mode's quality against kv-f16, its speed at a few context depths and its memory, on this machine (its first step times kv-f16 and says how long the rest will take; replies wait meanwhile).</span>
            {active && <progress data-testid="check-progress" max={1} value={check?.progress} aria-label="Check progress" />}
            {check && <p className="small" data-testid="check-step">{check.state}: {check.error ?? check.step}{active && check.estimatedSeconds !== null ? ` (about ${formatDuration(check.estimatedSeconds)} in all)` : ""}</p>}
        </div>
    );
}

function InstalledModel({ model }: { model: ModelEntry }) {
    const [confirming, setConfirming] = useState(false);
    const meta = model.metadata;
    return (
        <li className="card" data-testid="model-entry">
            <h3>{meta.name || model.fileName}</h3>
            <p className="muted small">{model.path}</p>
            <dl className="facts">
                <dt>Architecture</dt><dd>{meta.architecture}</dd>
                <dt>Layers</dt><dd>{meta.nLayer}</dd>
                <dt>Heads</dt><dd>{meta.nHead}</dd>
                <dt>KV heads</dt><dd>{meta.nHeadKv} ({meta.nHeadKv < meta.nHead ? "GQA" : "MHA"})</dd>
                <dt>Context length</dt><dd>{meta.contextLength}</dd>
                <dt>Size</dt><dd>{formatBytes(meta.sizeBytes)}</dd>
            </dl>
            <CheckPanel modelId={model.id} />
            <details>
                <summary>Cache modes ({model.modes.filter((advice) => advice.recommended).map((advice) => advice.mode).join(", ") || "none"} recommended)</summary>
                <ModesTable model={model} />
            </details>
            {confirming
                ? <span><button type="button" className="danger" data-testid="delete-model-confirm" onClick={() => void deleteModel(model.id)}>Delete the file</button> <button type="button" onClick={() => setConfirming(false)}>Keep it</button></span>
                : <button type="button" data-testid="delete-model" onClick={() => setConfirming(true)}>Delete</button>}
        </li>
    );
}

function CatalogItem({ entry, installed }: { entry: CatalogEntry; installed: boolean }) {
    return (
        <li className="card" data-testid="catalog-entry">
            <h3>{entry.name}</h3>
            <p>{entry.description}</p>
            <p className="muted small">
                {formatBytes(entry.sizeBytes)} · {entry.architecture} · {entry.nLayer} layers · {entry.attention} · {entry.availableModes.length} cache modes (their quality and speed are measured by a check once it is installed)
            </p>
            {entry.sha256 === null
                ? <p className="small unverified" data-testid="catalog-unverified">Unverified: no checksum is known for this file, so only its GGUF header is checked.</p>
                : <p className="small muted" data-testid="catalog-verified">Verified: the download must match its sha256.</p>}
            <button type="button" data-testid="catalog-download" disabled={installed} onClick={() => void startDownload({ catalogId: entry.id })}>
                {installed ? "Installed" : "Download"}
            </button>
        </li>
    );
}

const activeStates = new Set<DownloadInfo["state"]>(["downloading", "paused", "verifying", "failed"]);

function DownloadRow({ download }: { download: DownloadInfo }) {
    const percent = download.totalBytes > 0 ? Math.round((100 * download.downloadedBytes) / download.totalBytes) : 0;
    return (
        <li className="card" data-testid="download-entry" data-state={download.state}>
            <strong>{download.fileName}</strong> <span className="muted">{download.state}</span>
            <progress data-testid="download-progress" max={download.totalBytes || 1} value={download.downloadedBytes} aria-label={`Download of ${download.fileName}`} />
            <span className="small">{formatBytes(download.downloadedBytes)} of {download.totalBytes ? formatBytes(download.totalBytes) : "unknown"} ({percent}%)</span>
            {download.error && <p role="alert" className="error">{download.error} Resume to try again, or cancel.</p>}
            <div className="row">
                {download.state === "downloading" && <button type="button" data-testid="download-pause" onClick={() => void pauseDownload(download.id)}>Pause</button>}
                {(download.state === "paused" || download.state === "failed") && <button type="button" data-testid="download-resume" onClick={() => void resumeDownload(download.id)}>Resume</button>}
                {download.state !== "verifying" && <button type="button" data-testid="download-cancel" onClick={() => void cancelDownload(download.id)}>Cancel</button>}
            </div>
        </li>
    );
}

// A https URL or an hf: URI, with an optional sha256 that the file must match.
function DownloadForm() {
    const [url, setUrl] = useState("");
    const [sha256, setSha256] = useState("");
    const submit = async () => {
        if (await startDownload(sha256.trim() ? { url: url.trim(), sha256: sha256.trim() } : { url: url.trim() })) {
            setUrl("");
            setSha256("");
        }
    };
    return (
        <form className="row" onSubmit={(event) => { event.preventDefault(); void submit(); }}>
            <TextField label="Download by URL (https:// or hf:owner/repo/file.gguf)" value={url} onChange={setUrl} testId="download-url" />
            <TextField label="SHA-256 (optional)" value={sha256} onChange={setSha256} testId="download-sha256" />
            <button type="submit" data-testid="download-start" disabled={!url.trim()}>Download</button>
        </form>
    );
}

function ImportForm() {
    const [filePath, setFilePath] = useState("");
    return (
        <form className="row" onSubmit={(event) => { event.preventDefault(); void importModel(filePath.trim()).then((ok) => ok && setFilePath("")); }}>
            <TextField label="Path to a .gguf file" value={filePath} onChange={setFilePath} testId="import-path" />
            <button type="submit" data-testid="import-submit" disabled={!filePath.trim()}>Import</button>
        </form>
    );
}

export function ModelsView() {
    const models = useModels((state) => state.models);
    const catalog = useModels((state) => state.catalog);
    const downloads = useModels((state) => state.downloads).filter((download) => activeStates.has(download.state));
    const installedFiles = new Set(models.map((model) => model.fileName));
    return (
        <div className="page">
            <h2>Models</h2>
            <section aria-labelledby="installed-title">
                <h3 id="installed-title">Installed</h3>
                {models.length === 0 && <p className="empty" data-testid="empty-models">No models yet — download one from the catalog below or import a .gguf.</p>}
                <ul className="cards">{models.map((model) => <InstalledModel key={model.id} model={model} />)}</ul>
            </section>
            <section aria-labelledby="downloads-title">
                <h3 id="downloads-title">Downloads</h3>
                <DownloadForm />
                {downloads.length === 0 ? <p className="muted">No downloads in progress.</p> : <ul className="cards" aria-live="polite">{downloads.map((download) => <DownloadRow key={download.id} download={download} />)}</ul>}
            </section>
            <section aria-labelledby="import-title">
                <h3 id="import-title">Import a local .gguf</h3>
                <ImportForm />
            </section>
            <section aria-labelledby="catalog-title">
                <h3 id="catalog-title">Catalog</h3>
                {catalog.length === 0 && <p className="muted">The catalog is empty.</p>}
                <ul className="cards">{catalog.map((entry) => <CatalogItem key={entry.id} entry={entry} installed={installedFiles.has(entry.fileName)} />)}</ul>
            </section>
        </div>
    );
}
