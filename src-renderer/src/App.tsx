import { useEffect, useState } from "react";
import type { ApiResult, EngineInfo } from "../../src-main/api/contract.ts";
import { client } from "./client.ts";

export function App() {
    const [info, setInfo] = useState<ApiResult<EngineInfo> | null>(null);

    useEffect(() => {
        void client.getEngineInfo({}).then(setInfo);
    }, []);

    return (
        <main className="app">
            <h1>XQuant Desktop</h1>
            {info === null && <p role="status">Starting the engine…</p>}
            {info?.ok === false && <p role="alert" className="error">{info.error.message}</p>}
            {info?.ok === true && (
                <section aria-label="Engine" data-testid="engine-info">
                    <p>
                        Engine: <strong data-testid="engine-marker">{info.value.xquant ? "XQUANT = 1" : "stock llama.cpp"}</strong>
                        {" "}(patch series {info.value.patchSeriesVersion}, {info.value.threads} threads)
                    </p>
                    <pre className="system-info">{info.value.systemInfo}</pre>
                </section>
            )}
        </main>
    );
}
