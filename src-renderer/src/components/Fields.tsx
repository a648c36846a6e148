// Labelled inputs shared by the settings view and the chat settings panel.
import { useId } from "react";
import type { SamplingSettings } from "../../../src-main/api/contract.ts";

interface NumberFieldProps {
    label: string;
    value: number;
    onChange(value: number): void;
    min?: number;
    max?: number;
    step?: number;
    testId?: string;
}

export function NumberField({ label, value, onChange, min, max, step = 1, testId }: NumberFieldProps) {
    const id = useId();
    return (
        <div className="field">
            <label htmlFor={id}>{label}</label>
            <input id={id} type="number" value={value} min={min} max={max} step={step} data-testid={testId}
                onChange={(event) => { if (event.target.value !== "") onChange(Number(event.target.value)); }} />
        </div>
    );
}

export function TextField({ label, value, onChange, multiline = false, testId }: { label: string; value: string; onChange(value: string): void; multiline?: boolean; testId?: string }) {
    const id = useId();
    return (
        <div className="field">
            <label htmlFor={id}>{label}</label>
            {multiline
                ? <textarea id={id} rows={3} value={value} data-testid={testId} onChange={(event) => onChange(event.target.value)} />
                : <input id={id} type="text" value={value} data-testid={testId} onChange={(event) => onChange(event.target.value)} />}
        </div>
    );
}

export function SamplingFields({ value, onChange }: { value: SamplingSettings; onChange(value: SamplingSettings): void }) {
    const set = <K extends keyof SamplingSettings>(key: K) => (next: SamplingSettings[K]) => onChange({ ...value, [key]: next });
    return (
        <fieldset>
            <legend>Sampling</legend>
            <NumberField label="Temperature" value={value.temperature} min={0} max={2} step={0.05} onChange={set("temperature")} />
            <NumberField label="Top P" value={value.topP} min={0} max={1} step={0.05} onChange={set("topP")} />
            <NumberField label="Top K" value={value.topK} min={0} onChange={set("topK")} />
            <NumberField label="Max tokens" value={value.maxTokens} min={1} onChange={set("maxTokens")} />
            <NumberField label="Seed (-1 = random)" value={value.seed ?? -1} min={-1} onChange={(seed) => set("seed")(seed < 0 ? null : seed)} />
        </fieldset>
    );
}
