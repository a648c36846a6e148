import { create } from "zustand";
import type { CatalogEntry, CheckStatus, DownloadInfo, ModelEntry } from "../../../src-main/api/contract.ts";

interface ModelsState {
    models: ModelEntry[];
    catalog: CatalogEntry[];
    downloads: DownloadInfo[];
    // each model's latest check status (waiting, running, or how it ended), by model id
    checks: Record<string, CheckStatus>;
}

export const useModels = create<ModelsState>()(() => ({ models: [], catalog: [], downloads: [], checks: {} }));

export const withCheck = (checks: Record<string, CheckStatus>, check: CheckStatus): Record<string, CheckStatus> => ({ ...checks, [check.modelId]: check });
