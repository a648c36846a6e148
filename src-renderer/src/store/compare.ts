import { create } from "zustand";
import type { CompareRun } from "../../../src-main/api/contract.ts";

// Saved and running comparisons, newest first.
export const useCompare = create<{ runs: CompareRun[] }>()(() => ({ runs: [] }));
