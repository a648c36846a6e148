// The CPU variants of ggml's CPU backend that the native build makes (GGML_BACKEND_DL):
// one library each, loaded at run time by the best score the CPU can really run
// (CPUID plus the state the OS saves; see xquant-cpu-probe.h).
// XQ_CPU_VARIANT=<tag> makes the loader take that one only (tests run every one).
// Ordered from the baseline to the best; `flags` are /proc/cpuinfo's names.
import fs from "node:fs";

interface CpuVariant {
    tag: string;
    flags: string[];
}

const haswell = ["sse4_2", "avx", "f16c", "fma", "avx2", "bmi2"];
const skylakex = [...haswell, "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"];
const icelake = [...skylakex, "avx512vbmi", "avx512_vnni"];

const x86Variants: CpuVariant[] = [
    { tag: "x64", flags: [] },
    { tag: "haswell", flags: haswell },
    { tag: "skylakex", flags: skylakex },
    { tag: "icelake", flags: icelake },
    { tag: "sapphirerapids", flags: [...icelake, "avx512_bf16", "amx_tile", "amx_int8"] },
];

export const builtCpuVariantTags = x86Variants.map((variant) => variant.tag);

function cpuFlags(): Set<string> {
    const cpuinfo = fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "";
    const line = cpuinfo.split("\n").find((entry) => entry.startsWith("flags"));
    return new Set(line?.split(":")[1]?.trim().split(/\s+/) ?? []);
}

// runsHere: Linux lists a flag in /proc/cpuinfo only where the CPU has it and the OS saves
// its state, which is what the loader checks: an independent account of what must load.
export function cpuVariants(): (CpuVariant & { runsHere: boolean })[] {
    if (process.arch !== "x64") return [];
    const flags = cpuFlags();
    return x86Variants.map((variant) => ({ ...variant, runsHere: variant.flags.every((flag) => flags.has(flag)) }));
}
