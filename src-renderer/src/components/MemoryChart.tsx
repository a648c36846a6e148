import { memo, useMemo, useState } from "react";
import { CartesianGrid, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { CacheMode } from "../../../src-main/api/contract.ts";
import { useShallow } from "zustand/react/shallow";
import { useMetrics } from "../store/metrics.ts";
import { useModels } from "../store/models.ts";
import { useSession } from "../store/session.ts";
import { mib } from "./format.ts";
import { chartRows, defaultComparedModes, maxComparedModes, modeColor, toggleCompared } from "./memoryRows.ts";

// Selects only what changes the picture: not contextTokens, not the streaming text.
function useActiveRun() {
    return useSession(useShallow((state) => ({
        chatId: state.session?.chatId ?? null,
        modelId: state.session?.modelId ?? null,
        mode: state.session?.mode ?? null,
        baseLayers: state.session?.run.baseLayers ?? -1,
        contextSize: state.session?.contextSize ?? 0,
    })));
}

export const MemoryChart = memo(function MemoryChart({ chatId }: { chatId: string }) {
    const run = useActiveRun();
    const model = useModels((state) => state.models.find((entry) => entry.id === run.modelId));
    const allSamples = useMetrics((state) => state.samples);
    const samples = useMemo(() => allSamples.filter((sample) => sample.chatId === run.chatId && sample.mode === run.mode), [allSamples, run.chatId, run.mode]);
    const available = useMemo(() => (model?.modes ?? []).filter((advice) => advice.available).map((advice) => advice.mode), [model]);
    // null until the user ticks a mode to compare
    const [picked, setPicked] = useState<CacheMode[] | null>(null);
    const compared = useMemo(() => (run.mode ? (picked ?? defaultComparedModes(available, run.mode)) : [])
        .filter((mode) => mode !== run.mode && available.includes(mode)), [picked, available, run.mode]);
    const formulaModes = useMemo(() => (run.mode ? [run.mode, ...compared] : []), [run.mode, compared]);
    const rows = useMemo(() => (model ? chartRows(samples, model.metadata, formulaModes, run.baseLayers, run.contextSize) : []), [model, samples, formulaModes, run.baseLayers, run.contextSize]);

    if (run.chatId !== chatId || !model || !run.mode) {
        return <section className="panel" aria-label="Memory"><h2>Memory</h2><p className="muted" data-testid="memory-empty">Load this chat's model to see its cache and compute buffers live.</p></section>;
    }
    const latest = samples.at(-1);
    const hasVram = samples.some((sample) => sample.vramUsedBytes !== null);
    const total = latest ? latest.cacheBytesUsed + latest.computeBytes : 0;
    const formulaLines = formulaModes.map((mode, index) => {
        // where a check measured the mode: the largest context its memory budget holds
        const fitsUpTo = model.modes.find((advice) => advice.mode === mode)?.measured?.maxContextInBudget ?? null;
        return { key: mode, label: `${mode} cache (formula)${fitsUpTo !== null ? `, fits up to ${fitsUpTo} tokens` : ""}`, fitsUpTo,
            color: index === 0 ? "#d62728" : modeColor(index - 1, compared.length), width: 1, dash: index === 0 ? "1 3" : undefined };
    });
    const lines = [
        { key: "measuredWithCompute", label: `measured cache + compute buffers (${run.mode})`, color: "#d62728", width: 3 },
        { key: "measured", label: `measured cache (${run.mode})`, color: "#d62728", width: 2, dash: "6 3" },
        ...formulaLines,
    ];
    return (
        <section className="panel" aria-label="Memory">
            <h2>Memory</h2>
            <p>
                Mode <strong data-testid="active-mode">{run.mode}</strong>:{" "}
                <strong data-testid="measured-total-mib" data-bytes={total}>{mib(total).toFixed(2)}</strong> MiB at{" "}
                <span data-testid="measured-tokens">{latest?.contextTokens ?? 0}</span> tokens: cache{" "}
                <span data-testid="measured-cache-mib" data-bytes={latest?.cacheBytesUsed ?? 0}>{mib(latest?.cacheBytesUsed ?? 0).toFixed(2)}</span> MiB + compute buffers{" "}
                <span data-testid="measured-compute-mib" data-bytes={latest?.computeBytes ?? 0}>{mib(latest?.computeBytes ?? 0).toFixed(2)}</span> MiB
            </p>
            <div className="chart" data-testid="memory-chart">
                <ResponsiveContainer width="100%" height={260}>
                    <LineChart data={rows} margin={{ top: 8, right: 8, bottom: 16, left: 0 }}>
                        <CartesianGrid strokeDasharray="3 3" />
                        <XAxis dataKey="tokens" type="number" domain={[0, "dataMax"]} label={{ value: "context tokens", position: "insideBottom", offset: -8 }} />
                        <YAxis yAxisId="cache" label={{ value: "memory MiB", angle: -90, position: "insideLeft" }} />
                        <YAxis yAxisId="process" orientation="right" label={{ value: "engine process MiB", angle: 90, position: "insideRight" }} />
                        <Tooltip formatter={(value) => (typeof value === "number" ? `${value.toFixed(2)} MiB` : value)} />
                        {lines.map((line) => (
                            <Line key={line.key} yAxisId="cache" dataKey={line.key} name={line.label} stroke={line.color} strokeWidth={line.width} strokeDasharray={line.dash}
                                dot={false} isAnimationActive={false} connectNulls className={`line-${line.key}`} />
                        ))}
                        <Line yAxisId="process" dataKey="rss" name="engine RSS" stroke="#888" strokeDasharray="4 2" dot={false} isAnimationActive={false} connectNulls className="line-rss" />
                        {hasVram && <Line yAxisId="process" dataKey="vram" name="VRAM used" stroke="#555" strokeDasharray="2 2" dot={false} isAnimationActive={false} connectNulls className="line-vram" />}
                        {formulaLines.filter((line) => line.fitsUpTo !== null && line.fitsUpTo <= run.contextSize).map((line) => (
                            <ReferenceLine key={`fits-${line.key}`} yAxisId="cache" x={line.fitsUpTo!} stroke={line.color} strokeDasharray="2 4" label={{ value: `${line.key} fits`, position: "top", fontSize: 10 }} />
                        ))}
                    </LineChart>
                </ResponsiveContainer>
            </div>
            <ul className="legend" aria-label="Chart lines">
                {lines.map((line) => (
                    <li key={line.key} data-testid={`memory-line-${line.key}`}><span className="swatch" style={{ background: line.color }} />{line.label}</li>
                ))}
                <li data-testid="memory-line-rss"><span className="swatch" style={{ background: "#888" }} />engine process RSS (right axis)</li>
                {hasVram && <li data-testid="memory-line-vram"><span className="swatch" style={{ background: "#555" }} />VRAM used (right axis)</li>}
            </ul>
            <fieldset className="compare-modes" data-testid="compare-modes">
                <legend>Compare with (up to {maxComparedModes})</legend>
                {available.filter((mode) => mode !== run.mode).map((mode) => (
                    <label key={mode}>
                        <input type="checkbox" data-testid={`compare-${mode}`} checked={compared.includes(mode)}
                            disabled={!compared.includes(mode) && compared.length >= maxComparedModes}
                            onChange={() => setPicked(toggleCompared(compared, mode))} />
                        {mode}
                    </label>
                ))}
            </fieldset>
        </section>
    );
});
