import { useId, useState } from "react";
import type { Chat } from "../../../src-main/api/contract.ts";
import { resolveRunSettings } from "../../../src-main/api/run-settings.ts";
import { changeChatRun, updateChat } from "../actions.ts";
import { useModels } from "../store/models.ts";
import { useSettings } from "../store/settings.ts";
import { SamplingFields, TextField } from "./Fields.tsx";
import { ModeSelect } from "./ModeSelect.tsx";

// Model, cache mode override, system prompt and sampling for one chat. The
// parent keys it by chat id so the draft starts over for each chat.
export function ChatSettingsPanel({ chat }: { chat: Chat }) {
    const models = useModels((state) => state.models);
    const settings = useSettings((state) => state.settings);
    const [systemPrompt, setSystemPrompt] = useState(chat.systemPrompt);
    const [sampling, setSampling] = useState(chat.sampling);
    const modelSelect = useId();
    const model = models.find((entry) => entry.id === chat.modelId);
    const modelDefault = settings ? resolveRunSettings(settings, chat.modelId, null, model?.metadata.contextLength) : null;
    const dirty = systemPrompt !== chat.systemPrompt || JSON.stringify(sampling) !== JSON.stringify(chat.sampling);
    return (
        <section className="panel" aria-label="Chat settings">
            <h2>Chat settings</h2>
            <div className="field">
                <label htmlFor={modelSelect}>Model</label>
                <select id={modelSelect} data-testid="chat-model-select" value={chat.modelId ?? ""}
                    onChange={(event) => void changeChatRun({ chatId: chat.id, modelId: event.target.value })}>
                    <option value="" disabled>{models.length ? "Pick a model" : "No models installed"}</option>
                    {models.map((entry) => <option key={entry.id} value={entry.id}>{entry.metadata.name || entry.fileName}</option>)}
                </select>
            </div>
            {model && modelDefault && (
                <ModeSelect label="Cache mode for this chat" value={chat.runOverride?.cacheMode ?? null}
                    defaultLabel={`Model default (${modelDefault.cacheMode})`}
                    options={model.modes.map((advice) => ({ ...advice, note: advice.reason }))}
                    onChange={(mode) => void changeChatRun({ chatId: chat.id, runOverride: mode === null ? null : { ...(chat.runOverride ?? modelDefault), cacheMode: mode } })} />
            )}
            <form onSubmit={(event) => { event.preventDefault(); void updateChat({ chatId: chat.id, systemPrompt, sampling }); }}>
                <TextField label="System prompt" multiline value={systemPrompt} onChange={setSystemPrompt} testId="system-prompt" />
                <SamplingFields value={sampling} onChange={setSampling} />
                <button type="submit" data-testid="save-chat-settings" disabled={!dirty}>Save chat settings</button>
            </form>
        </section>
    );
}
