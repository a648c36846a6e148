import { create } from "zustand";
import type { SessionInfo } from "../../../src-main/api/contract.ts";

export const useSession = create<{ session: SessionInfo | null }>()(() => ({ session: null }));
