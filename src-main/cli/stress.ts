// npm run stress [-- --downloads 20] [--kills 50] [--ggufs 1000] [--requests 1000] [--turns 1000] [--full-disk 30] [--hangs 100] [--only R7,R8] [--out docs/reliability.md]
//
// Reliability figures, each measured through the app's own code (services,
// local server, engine process), in temporary folders:
//   R2  downloads cut at random offsets resume, and none is listed corrupt
//   R3  SIGKILL of the process writing a chat: no saved message lost, no file corrupt
//   R4  fuzzed GGUFs and malformed API/OpenAI requests get typed errors; the app
//       process survives every one (the engine process may die; it restarts)
//   R6  a long chat soak with context shifts: cache bytes bounded, engine RSS flat
//   R7  downloads, chat replies and compare runs while writes fail with ENOSPC at
//       random: no crash, no file lost or damaged, every error typed
//   R8  engine calls against an engine process that stops answering at random
//       (SIGSTOP): every call ends within its watchdog's limit, with a typed error
// Writes the figures, with the command that made them, to --out; with --only, just
// those figures, each with its own command, in place of their old sections.
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { fixturePath, type FixtureName } from "../../fixtures/fixtures.ts";
import { repoRoot } from "../../native/paths.ts";
import { startTestFileServer } from "../../test-support/file-server.ts";
import type { ApiEvent, CacheMode, MetricsSample } from "../api/contract.ts";
import { apiMethods } from "../api/methods.ts";
import { startServer, tokenHeader } from "../server/server.ts";
import { ChatStore } from "../services/chats.ts";
import { EventBus } from "../services/events.ts";
import { ModelLibrary } from "../services/library.ts";
import { readGgufMetadata, sha256File } from "../engine/models.ts";
import { logUnhandledRejections } from "../services/process-guard.ts";
import { Services } from "../services/services.ts";
import { enospcAtRandom } from "../../test-support/random-enospc.ts";
import { nextEvent, ok } from "../services/service-calls.ts";

const { values: args } = parseArgs({
    options: {
        downloads: { type: "string", default: "20" },
        kills: { type: "string", default: "50" },
        ggufs: { type: "string", default: "1000" },
        requests: { type: "string", default: "1000" },
        turns: { type: "string", default: "1000" },
        "full-disk": { type: "string", default: "30" },
        hangs: { type: "string", default: "100" },
        // figure ids to run, e.g. R7,R8 (default: all)
        only: { type: "string" },
        out: { type: "string", default: path.join(repoRoot, "docs", "reliability.md") },
    },
});

interface Figure {
    id: string;
    title: string;
    rows: [string, string][];
    passed: boolean;
}

const tempDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `xq-stress-${name}-`));
const randomInt = (below: number) => crypto.randomInt(below);
const log = (line: string) => console.log(`[stress] ${line}`);

// R2: each download's first transfer is cut at a random offset; the downloader resumes it.
async function cutDownloads(count: number): Promise<Figure> {
    const model = fs.readFileSync(fixturePath("mha-random-f16"));
    const sha256 = crypto.createHash("sha256").update(model).digest("hex");
    const events = new EventBus();
    const modelsDir = tempDir("downloads");
    const library = new ModelLibrary(() => modelsDir, events, readGgufMetadata);
    let done = 0;
    let resumed = 0;
    for (let index = 0; index < count; index++) {
        const server = await startTestFileServer({ "model.gguf": model }, { cutAfterBytes: 1 + randomInt(model.length - 1) });
        try {
            const started = await library.startDownload({ url: server.url("model.gguf"), sha256 });
            const finished = await new Promise<string>((resolve) => {
                const unsubscribe = events.subscribe((event) => {
                    if (event.type !== "download" || event.download.id !== started.id || !["done", "failed"].includes(event.download.state)) return;
                    unsubscribe();
                    resolve(event.download.state);
                });
            });
            if (finished === "done") done++;
            if (server.ranges.some((range) => /^bytes=[1-9]\d*-/.test(range))) resumed++;
        } finally {
            await server.close();
        }
    }
    const listed = await library.list();
    const corrupt = listed.filter((entry) => entry.sha256 !== sha256).length;
    return {
        id: "R2", title: `${count} downloads cut at random offsets`, passed: done === count && corrupt === 0 && listed.length === count,
        rows: [["finished and verified (sha256)", `${done} of ${count}`], ["resumed with a ranged request", `${resumed} of ${count}`], ["listed", `${listed.length}`], ["listed corrupt", `${corrupt}`]],
    };
}

// R3: a process saves one chat over and over; it is killed with SIGKILL at a random moment.
async function killsDuringWrites(count: number): Promise<Figure> {
    const appDir = tempDir("kills");
    const chatId = "stress-chat";
    let lost = 0;
    let acknowledged = 0;
    for (let index = 0; index < count; index++) {
        const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "stress-writer.ts"), appDir, chatId], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
        let lastSaved = 0;
        let firstSave: () => void = () => {};
        const started = new Promise<void>((resolve) => {
            firstSave = resolve;
        });
        child.stdout.on("data", (chunk: Buffer) => {
            for (const match of chunk.toString().matchAll(/saved (\d+)/g)) lastSaved = Number(match[1]);
            if (lastSaved > 0) firstSave();
        });
        const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
        await started;
        await new Promise((resolve) => setTimeout(resolve, 20 + randomInt(300)));
        child.kill("SIGKILL");
        await exited;
        acknowledged = lastSaved;
        const messages = new ChatStore(appDir).get(chatId).messages.length;
        if (messages < acknowledged) lost++;
    }
    const files = fs.readdirSync(path.join(appDir, "chats"));
    const damaged = files.filter((file) => file.includes(".damaged")).length;
    const leftoverTemps = files.filter((file) => file.endsWith(".tmp")).length;
    return {
        id: "R3", title: `${count} SIGKILLs of the process writing a chat`, passed: lost === 0 && damaged === 0 && leftoverTemps === 0,
        rows: [["runs where an acknowledged save was lost", `${lost} of ${count}`], ["chat files found damaged", `${damaged}`],
            ["messages saved by the last run", `${acknowledged}`], ["temp files left once the chats were loaded again", `${leftoverTemps}`]],
    };
}

// R4 (files): random corruption of a GGUF's header, metadata and tensor table, or a cut.
async function fuzzedGgufs(count: number): Promise<Figure> {
    const services = new Services({ appDir: tempDir("ggufs"), maxThreads: Math.min(2, os.availableParallelism()) });
    const original = fs.readFileSync(fixturePath("gqa-trained-q4_0"));
    const dir = tempDir("gguf-files");
    const outcomes = new Map<string, number>();
    const count1 = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    let engineDeaths = 0;
    let untyped = 0;
    const pids = new Set<number>();
    try {
        for (let index = 0; index < count; index++) {
            const bytes = Buffer.from(original);
            const kind = ["header", "metadata and tensor table", "cut"][index % 3]!;
            if (kind === "cut") {
                const file = bytes.subarray(0, randomInt(bytes.length));
                fs.writeFileSync(path.join(dir, "fuzz.gguf"), file);
            } else {
                const [from, to] = kind === "header" ? [0, 24] : [24, Math.min(bytes.length, 256 * 1024)];
                for (let flips = 1 + randomInt(8); flips > 0; flips--) bytes[from + randomInt(to - from)] = randomInt(256);
                fs.writeFileSync(path.join(dir, "fuzz.gguf"), bytes);
            }
            const imported = await services.handleRequest("importModel", { path: path.join(dir, "fuzz.gguf") });
            if (!imported.ok) {
                if (imported.error.code === "internal") untyped++;
                count1(`refused at import (${imported.error.code})`);
                continue;
            }
            // a file the header check lets through is loaded by the engine, in its own process
            const plan = await services.planCompletion({ modelId: imported.value.id, systemPrompt: "", messages: [{ role: "user", text: "In the beginning" }], sampling: { maxTokens: 2 } });
            const answer = plan.ok ? await services.complete(plan.value, () => {}, new AbortController().signal) : plan;
            if (answer.ok) count1("accepted and answered");
            else {
                if (answer.error.code === "internal") untyped++;
                count1(`accepted, refused by the engine (${answer.error.code})`);
            }
            const engine = await services.engine();
            if (engine.pid !== undefined && !pids.has(engine.pid)) {
                if (pids.size > 0) engineDeaths++;
                pids.add(engine.pid);
            }
            await ok(services.handleRequest("deleteModel", { modelId: imported.value.id }));
        }
    } finally {
        await services.dispose();
    }
    return {
        id: "R4a", title: `${count} fuzzed GGUF files (random bytes in the header, in the metadata and tensor table, or a random cut)`, passed: untyped === 0,
        rows: [...[...outcomes].sort().map(([outcome, n]): [string, string] => [outcome, `${n}`]), ["untyped errors", `${untyped}`], ["engine process deaths (each restarted)", `${engineDeaths}`], ["app process deaths", "0 (this process ran every file)"]],
    };
}

// R4 (requests): property-based malformed requests against the local server: contract methods and the OpenAI route.
async function malformedRequests(count: number): Promise<Figure> {
    const services = new Services({ appDir: tempDir("requests"), maxThreads: Math.min(2, os.availableParallelism()) });
    const staticDir = tempDir("static");
    fs.writeFileSync(path.join(staticDir, "index.html"), "<!doctype html><title>XQuant Desktop</title>");
    const server = await startServer({ services, staticDir });
    const statuses = new Map<string, number>();
    const doors = new Map<string, number>();
    let untyped = 0;
    const value = fc.jsonValue({ maxDepth: 3 });
    const openAiBody = fc.record({
        model: fc.oneof(fc.string(), fc.integer(), fc.constant("no-such-model")),
        messages: fc.oneof(value, fc.array(fc.record({ role: fc.oneof(fc.constantFrom("user", "system", "assistant", "tool"), fc.string()), content: value }, { requiredKeys: [] }), { maxLength: 3 })),
        temperature: value, top_p: value, max_tokens: value, n: value, stop: value, stream: value, xquant_cache_mode: value,
    }, { requiredKeys: [] });
    const request = fc.oneof(
        fc.record({ route: fc.oneof(fc.constantFrom(...apiMethods), fc.stringMatching(/^[A-Za-z]{1,20}$/)).map((method) => `/api/${method}`), body: fc.oneof(value.map((json) => JSON.stringify(json)), fc.string()) }),
        fc.record({ route: fc.constant("/v1/chat/completions"), body: fc.oneof(openAiBody.map((json) => JSON.stringify(json)), fc.string()) }),
    );
    try {
        for (const { route, body } of fc.sample(request, count)) {
            const response = await fetch(`${server.origin}${route}`, { method: "POST", body, headers: { [tokenHeader]: server.token, authorization: `Bearer ${server.token}` } });
            const text = await response.text();
            const door = route.startsWith("/v1/") ? "OpenAI requests" : "contract method requests";
            doors.set(door, (doors.get(door) ?? 0) + 1);
            statuses.set(String(response.status), (statuses.get(String(response.status)) ?? 0) + 1);
            if (response.status >= 500) untyped++;
            else if (response.status !== 200 && !/"(code|type)":/.test(text)) untyped++;
        }
        const alive = (await fetch(`${server.origin}/api/getEngineInfo`, { method: "POST", body: "{}", headers: { [tokenHeader]: server.token } })).status === 200;
        return {
            id: "R4b", title: `${count} property-based malformed requests (fast-check): contract methods and /v1/chat/completions`, passed: untyped === 0 && alive,
            rows: [...[...doors, ...[...statuses].sort().map(([status, n]): [string, number] => [`HTTP ${status}`, n])].map(([what, n]): [string, string] => [what, `${n}`]), ["answers without a typed error (or 5xx)", `${untyped}`], ["server answering afterwards", alive ? "yes" : "no"]],
        };
    } finally {
        await server.close();
        await services.dispose();
    }
}

function rssBytesOf(pid: number): number {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// R6: one chat, many turns, in a small context: node-llama-cpp shifts it again and again.
async function soak(mode: CacheMode, fixture: FixtureName, turns: number): Promise<Figure> {
    const services = new Services({ appDir: tempDir(`soak-${mode}`), maxThreads: Math.min(2, os.availableParallelism()) });
    try {
        const modelId = (await ok(services.handleRequest("importModel", { path: fixturePath(fixture) }))).id;
        const chat = await ok(services.handleRequest("createChat", { modelId }));
        await ok(services.handleRequest("updateChat", { chatId: chat.id, runOverride: { cacheMode: mode, contextSize: 256, baseLayers: -1 }, sampling: { temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 24, seed: 1 } }));
        const samples: MetricsSample[] = [];
        services.subscribe((event) => {
            if (event.type === "metrics") samples.push(event.sample);
        });
        const rss: number[] = [];
        let shifted = 0;
        let failed = 0;
        for (let turn = 1; turn <= turns; turn++) {
            const finished = nextEvent(services, (event): event is Extract<ApiEvent, { type: "generation-done" | "generation-error" }> =>
                (event.type === "generation-done" || event.type === "generation-error") && event.chatId === chat.id);
            await ok(services.handleRequest("sendMessage", { chatId: chat.id, text: `Turn ${turn}: and the LORD spake unto Moses, saying,` }));
            const end = await finished;
            if (end.type === "generation-error") failed++;
            else if (end.message.stats?.contextShifted) shifted++;
            rss.push(rssBytesOf((await services.engine()).pid!));
            if (turn % 100 === 0) log(`${mode}: turn ${turn}, engine RSS ${mib(rss.at(-1)!)}`);
        }
        const saved = (await ok(services.handleRequest("getChat", { chatId: chat.id }))).messages.length;
        const allocated = new Set(samples.map((sample) => sample.cacheBytesAllocated));
        const maxUsed = Math.max(0, ...samples.map((sample) => sample.cacheBytesUsed));
        const window = Math.max(1, Math.floor(turns / 10));
        const early = median(rss.slice(window, 2 * window));
        const late = median(rss.slice(-window));
        const drift = early > 0 ? late / early - 1 : 0;
        return {
            id: `R6 ${mode}`, title: `${turns}-turn soak in ${mode} (${fixture}, context 256, 24 tokens a reply)`, passed: failed === 0 && allocated.size <= 1 && Math.abs(drift) <= 0.1 && saved === 2 * turns,
            rows: [["replies that shifted the context", `${shifted} of ${turns}`], ["failed replies", `${failed}`], ["messages saved", `${saved} of ${2 * turns}`],
                ["allocated cache (every sample)", [...allocated].map(mib).join(", ") || "no sample"], ["most cache in use", mib(maxUsed)],
                [`engine RSS, median of turns ${window + 1}-${2 * window}`, mib(early)], [`engine RSS, median of the last ${window} turns`, mib(late)], ["RSS drift", `${(drift * 100).toFixed(1)}%`]],
        };
    } finally {
        await services.dispose();
    }
}

const countIn = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
const countRows = (counts: Map<string, number>): [string, string][] => [...counts].sort().map(([what, n]) => [what, `${n}`]);
const threads = Math.min(2, os.availableParallelism());
type EventOf<T extends ApiEvent["type"]> = Extract<ApiEvent, { type: T }>;

// R7: each round a download, a chat reply or a compare run, while every write fails with
// ENOSPC at a random chance (0-50%, new each round). Then the app starts again on its
// folder: every acknowledged message and compare run must be there, no file damaged,
// every model listed whole.
async function fullDisk(count: number): Promise<Figure> {
    const appDir = tempDir("full-disk");
    const model = fs.readFileSync(fixturePath("mha-random-f16"));
    const sha256 = crypto.createHash("sha256").update(model).digest("hex");
    const server = await startTestFileServer({ "model.gguf": model });
    const services = new Services({ appDir, maxThreads: threads });
    // ipull (node-llama-cpp's downloader) leaves each failed chunk write unhandled: the guard logs
    // those and the process keeps running; any other unhandled rejection is a bug
    const unhandled = { ipull: 0, other: 0 };
    logUnhandledRejections((message) => void (message.includes(`${path.sep}ipull${path.sep}`) ? unhandled.ipull++ : unhandled.other++));
    const outcomes = new Map<string, number>();
    let untyped = 0;
    let writesFailed = 0;
    const typed = (what: string, code: string) => {
        if (code === "internal") untyped++;
        countIn(outcomes, `${what}: ${code}`);
    };
    const acknowledged = { messages: new Set<string>(), runs: new Set<string>() };
    const chatIds: string[] = [];
    try {
        const modelId = (await ok(services.handleRequest("importModel", { path: fixturePath("mha-random-f16") }))).id;
        await ok(services.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 16, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 256, baseLayers: -1 } }));
        for (let index = 0; index < count; index++) {
            const kind = (["download", "chat reply", "compare run"] as const)[index % 3];
            const chat = kind === "chat reply" ? await ok(services.handleRequest("createChat", { modelId })) : null;
            // log-uniform, so that some rounds fail one write in a thousand and others every other one
            const disk = enospcAtRandom(0.5 * 10 ** (-2.7 * Math.random()));
            try {
                if (kind === "download") {
                    const started = await services.handleRequest("startDownload", { url: server.url("model.gguf"), sha256 });
                    if (!started.ok) typed("download refused", started.error.code);
                    else {
                        const end = await nextEvent(services, (event): event is EventOf<"download"> => event.type === "download" && event.download.id === started.value.id && ["done", "failed"].includes(event.download.state));
                        const reason = end.download.error?.startsWith("The disk is full") ? "disk full" : end.download.error;
                        countIn(outcomes, `download ${end.download.state}${reason ? ` (${reason})` : ""}`);
                    }
                } else if (kind === "chat reply") {
                    chatIds.push(chat!.id);
                    const ended = nextEvent(services, (event): event is EventOf<"generation-done" | "generation-error"> => (event.type === "generation-done" || event.type === "generation-error") && event.chatId === chat!.id);
                    const sent = await services.handleRequest("sendMessage", { chatId: chat!.id, text: "In the beginning" });
                    if (!sent.ok) typed("message refused", sent.error.code);
                    else {
                        acknowledged.messages.add(sent.value.chat.messages.at(-1)!.id);
                        const end = await ended;
                        if (end.type === "generation-done") {
                            acknowledged.messages.add(end.message.id);
                            countIn(outcomes, "reply saved");
                        } else typed("reply not saved", end.error.code);
                    }
                } else {
                    const started = await services.handleRequest("startCompare", { modelId, modes: ["xq-4"], kind: "prompt", text: "In the beginning", maxTokens: 8, contextSize: 256 });
                    if (!started.ok) typed("compare run refused", started.error.code);
                    else {
                        acknowledged.runs.add(started.value.id);
                        const end = await nextEvent(services, (event): event is EventOf<"compare"> => event.type === "compare" && event.run.id === started.value.id && event.run.state !== "running");
                        countIn(outcomes, `compare run ${end.run.state}`);
                    }
                }
            } finally {
                writesFailed += disk.failures;
                disk.restore();
            }
        }
    } finally {
        await services.dispose();
        await server.close();
    }
    // the app again, on the same folder
    const restarted = new Services({ appDir, maxThreads: threads });
    try {
        const files = fs.readdirSync(appDir, { recursive: true }) as string[];
        const damaged = files.filter((file) => /\.damaged-\d+$/.test(file)).length;
        // a chat that is gone loses every message it had
        const saved = new Set(chatIds.flatMap((chatId) => restarted.chats.list().some((chat) => chat.id === chatId) ? restarted.chats.get(chatId).messages.map((message) => message.id) : []));
        const runs = new Set(restarted.compare.list().map((run) => run.id));
        const lost = [...acknowledged.messages].filter((id) => !saved.has(id)).length + [...acknowledged.runs].filter((id) => !runs.has(id)).length;
        const models = await ok(restarted.handleRequest("listModels", {}));
        let corrupt = 0;
        for (const listed of models) if (await sha256File(listed.path) !== sha256) corrupt++;
        return {
            id: "R7", title: `${count} downloads, chat replies and compare runs on a disk that is full at random writes (ENOSPC at a chance of 0.1-50% per write, new each round)`,
            passed: untyped === 0 && lost === 0 && damaged === 0 && corrupt === 0 && unhandled.other === 0,
            rows: [...countRows(outcomes), ["writes failed with ENOSPC", `${writesFailed}`], ["errors without a type (internal)", `${untyped}`],
                ["acknowledged messages and compare runs lost after a restart", `${lost} of ${acknowledged.messages.size + acknowledged.runs.size}`],
                ["files found damaged after a restart", `${damaged}`], ["models listed", `${models.length}`], ["models listed corrupt (sha256)", `${corrupt}`],
                ["unhandled rejections the process guard logged: ipull's failed chunk writes", `${unhandled.ipull}`], ["unhandled rejections the process guard logged: any other", `${unhandled.other}`],
                ["app process crashes", "0 (this process ran every round)"]],
        };
    } finally {
        await restarted.dispose();
    }
}

// R8: completions and memory queries; for about half of them the engine process is
// stopped (SIGSTOP) 0-300 ms after the call starts: during it, or before the next call.
// Every call must end within the watchdog's limit of the stop (or of its own start,
// where the engine was stopped already), typed.
async function hangs(count: number): Promise<Figure> {
    const limitMs = 3000;
    const services = new Services({ appDir: tempDir("hangs"), maxThreads: threads, engineTimeouts: { startMs: limitMs, callMs: limitMs, progressMs: limitMs, heavyMs: limitMs } });
    const outcomes = new Map<string, number>();
    let untyped = 0;
    let late = 0;
    let longest = 0;
    let stops = 0;
    const pids = new Set<number>();
    try {
        const modelId = (await ok(services.handleRequest("importModel", { path: fixturePath("mha-random-f16") }))).id;
        await ok(services.handleRequest("updateSettings", { defaultSampling: { temperature: 0, topP: 1, topK: 1, maxTokens: 32, seed: 1 }, defaultRun: { cacheMode: "kv-f16", contextSize: 256, baseLayers: -1 } }));
        let stoppedAt: number | null = null;
        let pendingStop: NodeJS.Timeout | undefined;
        for (let index = 0; index < count; index++) {
            const pid = (await services.engine()).pid!;
            pids.add(pid);
            const kind = index % 3 === 2 ? "memory queries" : "completions";
            const started = performance.now();
            if (pendingStop === undefined && stoppedAt === null && randomInt(2) === 0) {
                pendingStop = setTimeout(() => {
                    pendingStop = undefined;
                    try {
                        process.kill(pid, "SIGSTOP");
                        stoppedAt = performance.now();
                        stops++;
                    } catch {
                        // the process has ended already
                    }
                }, randomInt(300));
            }
            const plan = kind === "completions" ? await services.planCompletion({ modelId, systemPrompt: "", messages: [{ role: "user", text: "In the beginning" }] }) : null;
            const result = plan === null ? await services.handleRequest("getSystemMemory", {})
                : plan.ok ? await services.complete(plan.value, () => {}, new AbortController().signal) : plan;
            const ended = performance.now();
            if (result.ok) countIn(outcomes, `${kind} answered`);
            else {
                if (result.error.code === "internal") untyped++;
                countIn(outcomes, `${kind} ended by ${result.error.code}`);
            }
            // the wait that the watchdog bounds: from the stop, or from the start if the engine was stopped before
            if (stoppedAt !== null) {
                const waited = ended - Math.max(started, stoppedAt);
                longest = Math.max(longest, waited);
                if (waited > limitMs + 1000) late++;
                // a stopped engine is killed by the watchdog of the call that meets it
                if (!result.ok) stoppedAt = null;
            }
        }
        clearTimeout(pendingStop);
    } finally {
        await services.dispose();
    }
    return {
        id: "R8", title: `${count} engine calls (completions and memory queries) against an engine process stopped (SIGSTOP) at random; watchdog limit ${limitMs / 1000} s`,
        passed: untyped === 0 && late === 0,
        rows: [["engine stops (SIGSTOP)", `${stops}`], ...countRows(outcomes), ["errors without a type (internal)", `${untyped}`],
            ["longest wait after a stop", `${(longest / 1000).toFixed(1)} s`], [`calls that ended later than ${limitMs / 1000 + 1} s after a stop`, `${late}`],
            ["engine processes (each stop killed one; the next call started a new one)", `${pids.size}`]],
    };
}

// The arguments each figure's size comes from.
const figureArgs: Record<string, (keyof typeof args)[]> = { R2: ["downloads"], R3: ["kills"], R4: ["ggufs", "requests"], R6: ["turns"], R7: ["full-disk"], R8: ["hangs"] };
const only = args.only?.split(",");

function command(ids: string[]): string {
    const sizes = ids.flatMap((id) => figureArgs[id]!).map((name) => `--${name} ${args[name]}`).join(" ");
    return `npm run stress -- ${only === undefined ? "" : `--only ${only.join(",")} `}${sizes}`;
}

const measuredOn = (seconds: number) => `${(seconds / 60).toFixed(1)} minutes on ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "unknown CPU"}`;

function section(figure: Figure, measuredBy: string | null): string {
    return [
        `## ${figure.id}: ${figure.title} — ${figure.passed ? "pass" : "FAIL"}`, "",
        ...measuredBy === null ? [] : [measuredBy, ""],
        "| what | measured |", "|---|---|", ...figure.rows.map(([what, measured]) => `| ${what} | ${measured} |`), "",
    ].join("\n");
}

// The sections of a report written by hand (every heading but a figure's "## R…"), kept as they are.
function handSections(old: string): string[] {
    return old.split(/\n(?=## )/).slice(1).filter((part) => !part.startsWith("## R")).map((part) => `${part.trimEnd()}\n`);
}

function report(figures: Figure[], seconds: number, old: string): string {
    return [
        "# Reliability", "",
        `Measured by \`${command(Object.keys(figureArgs))}\` (written by it; ${measuredOn(seconds)}).`,
        "Every figure goes through the app's own code: the services, the local server and the engine process, in temporary folders.", "",
        ...figures.map((figure) => section(figure, null)),
        ...handSections(old),
    ].join("\n");
}

// The report with these figures' sections replaced (or added), each saying how it was measured.
function updatedReport(old: string, figures: Figure[], seconds: number): string {
    let text = old.trimEnd() + "\n";
    const measuredBy = `Measured by \`${command(only!)}\` (written by it; ${measuredOn(seconds)}).`;
    for (const figure of figures) {
        const updated = section(figure, measuredBy);
        const start = text.indexOf(`## ${figure.id}: `);
        if (start < 0) {
            text += `\n${updated}`;
            continue;
        }
        const next = text.indexOf("\n## ", start + 1);
        // a blank line before the next heading, as between the other sections
        text = text.slice(0, start) + updated + (next < 0 ? "" : `\n${text.slice(next + 1)}`);
    }
    return text;
}

async function main(): Promise<void> {
    const started = performance.now();
    const figures: Figure[] = [];
    const run = async (name: string, measure: () => Promise<Figure>) => {
        if (only !== undefined && !only.includes(name.split(" ")[0]!)) return;
        log(`${name}…`);
        const figure = await measure();
        log(`${figure.id}: ${figure.passed ? "pass" : "FAIL"} ${figure.rows.map(([what, measured]) => `${what}: ${measured}`).join("; ")}`);
        figures.push(figure);
    };
    await run("R2 cut downloads", () => cutDownloads(Number(args.downloads)));
    await run("R3 kills during chat writes", () => killsDuringWrites(Number(args.kills)));
    await run("R4 fuzzed GGUFs", () => fuzzedGgufs(Number(args.ggufs)));
    await run("R4 malformed requests", () => malformedRequests(Number(args.requests)));
    await run("R6 soak xq-4", () => soak("xq-4", "mha-trained", Number(args.turns)));
    await run("R6 soak xqlcl-2", () => soak("xqlcl-2", "gqa-trained", Number(args.turns)));
    await run("R7 full disk", () => fullDisk(Number(args["full-disk"])));
    await run("R8 hangs", () => hangs(Number(args.hangs)));
    const seconds = (performance.now() - started) / 1000;
    const old = fs.existsSync(args.out) ? fs.readFileSync(args.out, "utf8") : "# Reliability\n";
    fs.writeFileSync(args.out, only === undefined ? report(figures, seconds, old).trimEnd() + "\n" : updatedReport(old, figures, seconds));
    log(`wrote ${args.out}`);
    process.exitCode = figures.every((figure) => figure.passed) ? 0 : 1;
}

await main();
