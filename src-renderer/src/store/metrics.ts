import { create } from "zustand";
import { metricsHistory, metricsIntervalMs, type MetricsSample } from "../../../src-main/api/contract.ts";
import { throttle } from "../../../src-main/api/throttle.ts";


export const useMetrics = create<{ samples: MetricsSample[] }>()(() => ({ samples: [] }));

export function appendSamples(history: readonly MetricsSample[], incoming: readonly MetricsSample[], cap = metricsHistory): MetricsSample[] {
    const all = history.concat(incoming);
    return all.length > cap ? all.slice(all.length - cap) : all;
}

// Samples arrive as fast as the engine emits them; the store (and the chart
// that selects it) sees them in batches, at most 4 times a second.
let pending: MetricsSample[] = [];
const scheduleFlush = throttle<void>(metricsIntervalMs, () => {
    const batch = pending;
    pending = [];
    useMetrics.setState((state) => ({ samples: appendSamples(state.samples, batch) }));
});

export function pushSample(sample: MetricsSample): void {
    pending.push(sample);
    scheduleFlush();
}
