import { useId } from "react";
import type { CacheMode } from "../../../src-main/api/contract.ts";

// One cache mode as the engine sees it for a model (ModeAdvice or ModeEstimate).
export interface ModeOption {
    mode: CacheMode;
    available: boolean;
    recommended: boolean;
    note: string;
}

interface ModeSelectProps {
    label: string;
    options: ModeOption[];
    value: CacheMode | null;
    onChange(mode: CacheMode | null): void;
    // when set, an extra first choice meaning "no override" (null)
    defaultLabel?: string;
    testId?: string;
}

// Bits are part of the mode's name (xq-4 = 4 bits), so one select picks both.
export function ModeSelect({ label, options, value, onChange, defaultLabel, testId = "cache-mode-select" }: ModeSelectProps) {
    const id = useId();
    const selected = options.find((option) => option.mode === value);
    return (
        <div className="field">
            <label htmlFor={id}>{label}</label>
            <select id={id} data-testid={testId} value={value ?? ""} aria-describedby={`${id}-note`}
                onChange={(event) => onChange(event.target.value === "" ? null : (event.target.value as CacheMode))}>
                {defaultLabel !== undefined && <option value="">{defaultLabel}</option>}
                {options.map((option) => (
                    <option key={option.mode} value={option.mode} disabled={!option.available}>
                        {option.mode}{option.recommended ? " ★ recommended" : ""}{option.available ? "" : " (unavailable)"}
                    </option>
                ))}
            </select>
            <p id={`${id}-note`} className="muted small" data-testid={`${testId}-note`}>{selected?.note ?? ""}</p>
        </div>
    );
}
