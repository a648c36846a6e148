// npm run stress [-- --downloads 20] [--kills 50] [--ggufs 1000] [--requests 1000] [--turns 1000] [--out docs/reliability.md]
//
// Reliability figures, each measured through the app's own code (services,
// local server, engine process), in temporary folders:
//   R2  downloads cut at random offsets resume, and none is listed corrupt
//   R3  SIGKILL of the process writing a chat: no saved message lost, no file corrupt
//   R4  fuzzed GGUFs and malformed API/OpenAI requests get typed errors; the app
//       process survives every one (the engine process may die; it restarts)
//   R6  a long chat soak with context shifts: cache bytes bounded, engine RSS flat
// Writes the figures, with the command that made them, to --out.
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
import { readGgufMetadata } from "../engine/models.ts";
import { startServer, tokenHeader } from "../server/server.ts";
import { ChatStore } from "../services/chats.ts";
import { EventBus } from "../services/events.ts";
import { ModelLibrary } from "../services/library.ts";
import { Services } from "../services/services.ts";
import { nextEvent, ok } from "./service-calls.ts";

const { values: args } = parseArgs({
    options: {
        downloads: { type: "string", default: "20" },
        kills: { type: "string", default: "50" },
        ggufs: { type: "string", default: "1000" },
        requests: { type: "string", default: "1000" },
        turns: { type: "string", default: "1000" },
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

function report(figures: Figure[], seconds: number): string {
    const command = `npm run stress -- --downloads ${args.downloads} --kills ${args.kills} --ggufs ${args.ggufs} --requests ${args.requests} --turns ${args.turns}`;
    const sections = figures.map((figure) => [
        `## ${figure.id}: ${figure.title} — ${figure.passed ? "pass" : "FAIL"}`, "",
        "| what | measured |", "|---|---|", ...figure.rows.map(([what, measured]) => `| ${what} | ${measured} |`), "",
    ].join("\n"));
    return [
        "# Reliability", "",
        `Measured by \`${command}\` (written by it; ${(seconds / 60).toFixed(1)} minutes on ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "unknown CPU"}).`,
        "Every figure goes through the app's own code: the services, the local server and the engine process, in temporary folders.", "",
        ...sections,
    ].join("\n");
}

async function main(): Promise<void> {
    const started = performance.now();
    const figures: Figure[] = [];
    const run = async (name: string, measure: () => Promise<Figure>) => {
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
    fs.writeFileSync(args.out, `${report(figures, (performance.now() - started) / 1000)}\n`);
    log(`wrote ${args.out}`);
    process.exitCode = figures.every((figure) => figure.passed) ? 0 : 1;
}

await main();
