import type { SessionInfo } from "../../../src-main/api/contract.ts";
import { openSession } from "../actions.ts";
import { useMetrics } from "../store/metrics.ts";
import { useSession } from "../store/session.ts";

// The mode the context runs in; in auto, which one and why.
function modeLabel(session: SessionInfo): string {
    if (session.run.cacheMode !== "auto") return session.run.cacheMode;
    return session.mode === null ? "auto" : `auto → ${session.mode}`;
}

const stateLabels = { loading: "Loading the model", evaluating: "Evaluating the chat history", ready: "Ready", generating: "Generating", failed: "Failed" };

// Load the chat's model, watch loading progress and how full the context is.
export function SessionBar({ chatId, hasModel }: { chatId: string; hasModel: boolean }) {
    const session = useSession((state) => (state.session?.chatId === chatId ? state.session : null));
    const busy = session?.state === "loading" || session?.state === "evaluating";
    // while generating, the sampler's latest count is fresher than the session's
    const sampled = useMetrics((state) => state.samples.findLast((sample) => sample.chatId === chatId)?.contextTokens);
    const contextTokens = session?.state === "generating" && sampled !== undefined ? sampled : session?.contextTokens ?? 0;
    const fill = session && session.contextSize > 0 ? contextTokens / session.contextSize : 0;
    return (
        <div className="session-bar">
            <button type="button" data-testid="load-session" disabled={!hasModel || busy} onClick={() => void openSession(chatId)}
                title={hasModel ? undefined : "Pick a model in the chat settings first"}>
                {session ? "Reload" : "Load"}
            </button>
            <span role="status" aria-live="polite" data-testid="session-state" data-state={session?.state ?? "none"}>
                {session ? `${stateLabels[session.state]} · ${modeLabel(session)}` : hasModel ? "Not loaded" : "No model picked"}
                {session?.error ? `: ${session.error}` : ""}
            </span>
            {session?.evaluationSeconds != null && <span className="muted small" data-testid="evaluation-time">history evaluated in {session.evaluationSeconds.toFixed(1)} s</span>}
            {session?.autoReason && <span className="muted small" data-testid="auto-reason" title={session.autoReason}>{session.autoReason}</span>}
            {busy && <progress data-testid="session-progress" max={1} value={session.progress} aria-label="Loading progress" />}
            {session && (
                <span className="gauge" data-testid="context-gauge" title="Context fill">
                    <meter min={0} max={1} value={fill} aria-label="Context fill" />
                    {contextTokens} / {session.contextSize} tokens
                </span>
            )}
        </div>
    );
}
