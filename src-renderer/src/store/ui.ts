import { create } from "zustand";
import type { ApiError } from "../../../src-main/api/contract.ts";

export type View = "chat" | "models" | "compare" | "settings";

interface UiState {
    view: View;
    // the last failed request or generation, shown in the error banner
    error: ApiError | null;
    setView(view: View): void;
    showError(error: ApiError): void;
    dismissError(): void;
}

export const useUi = create<UiState>()((set) => ({
    view: "chat",
    error: null,
    // a new view is a new task: the last one's error no longer applies
    setView: (view) => set({ view, error: null }),
    showError: (error) => set({ error }),
    dismissError: () => set({ error: null }),
}));
