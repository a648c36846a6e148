import { create } from "zustand";
import type { CatalogEntry, DownloadInfo, ModelEntry } from "../../../src-main/api/contract.ts";

interface ModelsState {
    models: ModelEntry[];
    catalog: CatalogEntry[];
    downloads: DownloadInfo[];
}

export const useModels = create<ModelsState>()(() => ({ models: [], catalog: [], downloads: [] }));
