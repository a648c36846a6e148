import { useId } from "react";
import type { CacheMode, RunCacheMode } from "../../../src-main/api/contract.ts";

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
    value: RunCacheMode | null;
    onChange(mode: RunCacheMode | null): void;
    // when set, an extra first choice meaning "no override" (null)
    defaultLabel?: string;
    testId?: string;
}

const autoNote = "auto: the fastest mode this model's check measured within the quality budget whose context fits the memory budget; "
    + "as the chat grows past it, the chat moves to a mode that holds more (kv-f16 until a check has run)";

// Bits are part of the mode's name (xq-4 = 4 bits), so one select picks both; "auto" picks for the user.
export function ModeSelect({ label, options, value, onChange, defaultLabel, testId = "cache-mode-select" }: ModeSelectProps) {
    const id = useId();
    const note = value === "auto" ? autoNote : options.find((option) => option.mode === value)?.note ?? "";
    return (
        <div className="field">
            <label htmlFor={id}>{label}</label>
            <select id={id} data-testid={testId} value={value ?? ""} aria-describedby={`${id}-note`}
                onChange={(event) => onChange(event.target.value === "" ? null : (event.target.value as RunCacheMode))}>
                {defaultLabel !== undefined && <option value="">{defaultLabel}</option>}
                <option value="auto">auto (picks and changes the mode from this model's check)</option>
                {options.map((option) => (
                    <option key={option.mode} value={option.mode} disabled={!option.available}>
                        {option.mode}{option.recommended ? " ★ recommended" : ""}{option.available ? "" : " (unavailable)"}
                    </option>
                ))}
            </select>
            <p id={`${id}-note`} className="muted small" data-testid={`${testId}-note`}>{note}</p>
        </div>
    );
}
