import { useEffect, useState } from "react";
import type { EngineInfo } from "../../src-main/api/contract.ts";
import { call, startApp } from "./actions.ts";
import { runCommand } from "./commands.ts";
import { commandForKey } from "./keys.ts";
import { ErrorBanner } from "./components/ErrorBanner.tsx";
import { Sidebar } from "./components/Sidebar.tsx";
import { useSettings } from "./store/settings.ts";
import { useUi } from "./store/ui.ts";
import { ChatView } from "./views/ChatView.tsx";
import { CompareView } from "./views/CompareView.tsx";
import { ModelsView } from "./views/ModelsView.tsx";
import { SettingsView } from "./views/SettingsView.tsx";

const views = { chat: ChatView, models: ModelsView, compare: CompareView, settings: SettingsView };

// The CSS picks colors from data-theme; "system" follows prefers-color-scheme.
function useTheme(): void {
    const theme = useSettings((state) => state.settings?.theme ?? "system");
    useEffect(() => {
        document.documentElement.dataset.theme = theme;
    }, [theme]);
}

function EngineStatus() {
    const [info, setInfo] = useState<EngineInfo | null>(null);
    useEffect(() => {
        void call("getEngineInfo", {}).then((value) => setInfo(value ?? null));
    }, []);
    if (!info) return <p className="muted small" role="status">Starting the engine…</p>;
    return (
        <details className="muted small" data-testid="engine-info">
            <summary>Engine: <strong data-testid="engine-marker">{info.xquant ? "XQUANT = 1" : "stock llama.cpp"}</strong> (patch series {info.patchSeriesVersion}, {info.threads} threads)</summary>
            <pre className="system-info">{info.systemInfo}</pre>
        </details>
    );
}

export function App() {
    const view = useUi((state) => state.view);
    useTheme();
    useEffect(() => {
        const started = startApp(runCommand);
        return () => void started.then((unsubscribe) => unsubscribe());
    }, []);
    useEffect(() => {
        const onKeyDown = (event: KeyboardEvent) => {
            const command = commandForKey(event);
            if (command === null) return;
            event.preventDefault();
            runCommand(command);
        };
        window.addEventListener("keydown", onKeyDown);
        return () => window.removeEventListener("keydown", onKeyDown);
    }, []);
    const View = views[view];
    return (
        <div className="layout">
            <Sidebar />
            <main className="main" aria-label={view}>
                <ErrorBanner />
                <View />
                <footer><EngineStatus /></footer>
            </main>
        </div>
    );
}
