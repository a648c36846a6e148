// The layers of docs/architecture.md are held by lint (npm run lint, part of
// npm test): a file that breaks them fails. Each case lints a real file of the
// tree with one line added, as it would read after such a change.
import fs from "node:fs";
import path from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../native/paths.ts";

const eslint = new ESLint({ cwd: repoRoot });

// The rules that fail on `file` once `line` is appended to it.
async function brokenRules(file: string, line: string): Promise<(string | null)[]> {
    const filePath = path.join(repoRoot, file);
    const [result] = await eslint.lintText(`${fs.readFileSync(filePath, "utf8")}\n${line}\n`, { filePath });
    return result!.messages.filter((message) => message.severity === 2).map((message) => message.ruleId);
}

describe("the layers, enforced by lint", () => {
    it("the tree as it is passes", async () => {
        const results = await eslint.lintFiles(["src-main/services/compare.ts", "src-renderer/src/actions.ts", "src-main/api/contract.ts", "src-main/engine/engine.ts"]);
        expect(results.flatMap((result) => result.messages)).toEqual([]);
    });

    it("a service that imports node-llama-cpp fails", async () => {
        expect(await brokenRules("src-main/services/compare.ts", `import "node-llama-cpp";`)).toEqual(["layers/only-engine-imports-node-llama-cpp"]);
    });

    it("a renderer file that imports an engine file fails", async () => {
        expect(await brokenRules("src-renderer/src/actions.ts", `export { Engine } from "../../src-main/engine/engine.ts";`)).toEqual(["layers/renderer-imports-only-api"]);
    });

    it("the api importing anything outside itself but zod fails", async () => {
        expect(await brokenRules("src-main/api/contract.ts", `import "node:fs";`)).toEqual(["layers/api-imports-nothing"]);
        expect(await brokenRules("src-main/api/contract.ts", `import "react";`)).toEqual(["layers/api-imports-nothing"]);
        expect(await brokenRules("src-main/api/contract.ts", `export type { EngineError } from "../engine/errors.ts";`)).toEqual(["layers/api-imports-nothing"]);
    });

    it("electron outside the Electron shell fails", async () => {
        expect(await brokenRules("src-main/services/services.ts", `export const electron = import("electron");`)).toEqual(["layers/only-app-imports-electron"]);
    });
});
