// Lint: ESLint's and typescript-eslint's recommended rules, and the layers of
// docs/architecture.md as import zones, each its own rule so that a break names
// the rule of the house it breaks.
import { builtinModules } from "node:module";
import path from "node:path";
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const repoRoot = import.meta.dirname;

// Where an import leads: a path in this repository (from its root), or a package ("node" for Node's own modules).
function importTarget(fromFile, source) {
    if (source.startsWith(".")) return { path: path.relative(repoRoot, path.resolve(path.dirname(fromFile), source)) };
    const name = source.startsWith("@") ? source.split("/").slice(0, 2).join("/") : source.split("/")[0];
    return { package: source.startsWith("node:") || builtinModules.includes(name) ? "node" : name };
}

const inside = (target, folder) => target.path !== undefined && (target.path === folder || target.path.startsWith(`${folder}/`));

// A rule that reports each import (static, dynamic or re-export) that `allowed(target, file)` refuses.
function importZone(description, allowed) {
    return {
        meta: { type: "problem", docs: { description }, schema: [] },
        create(context) {
            const file = path.relative(repoRoot, context.filename);
            const check = (node) => {
                const source = node.source;
                if (source?.type !== "Literal" || typeof source.value !== "string") return;
                if (!allowed(importTarget(context.filename, source.value), file)) {
                    context.report({ node: source, message: `${description}: "${source.value}" is not allowed here.` });
                }
            };
            return { ImportDeclaration: check, ImportExpression: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
        },
    };
}

const isTest = (file) => file.endsWith(".test.ts");

const layers = {
    rules: {
        "renderer-imports-only-api": importZone("The renderer reaches the main process only through src-main/api",
            (target) => target.path !== undefined
                ? inside(target, "src-renderer") || inside(target, "src-main/api")
                : !["node", "electron", "node-llama-cpp"].includes(target.package)),
        "api-imports-nothing": importZone("src-main/api is the bottom layer and imports nothing outside itself but its schema library, zod",
            (target, file) => inside(target, "src-main/api") || target.package === "zod" || (isTest(file) && target.package === "vitest")),
        "only-engine-imports-node-llama-cpp": importZone("Only src-main/engine talks to node-llama-cpp",
            (target) => target.package !== "node-llama-cpp"),
        "only-app-imports-electron": importZone("Only src-main/app (the Electron shell) imports electron",
            (target) => target.package !== "electron"),
    },
};

export default defineConfig(
    { ignores: ["node_modules/", "native/build/", "dist/", "dist-main/", "dist-renderer/", "release/", "fixtures/models/", "test-results/", "bench-results/"] },
    js.configs.recommended,
    tseslint.configs.recommended,
    { plugins: { layers } },
    {
        files: ["**/*.{ts,tsx}"],
        rules: {
            // `_` names a value that is deliberately unused (a dropped field, a loop that only counts)
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
        },
    },
    { files: ["src-renderer/**"], rules: { "layers/renderer-imports-only-api": "error" } },
    { files: ["src-main/api/**"], rules: { "layers/api-imports-nothing": "error" } },
    // native/ and fixtures/ build the addon and the fixture models with node-llama-cpp's own tools
    { files: ["**/*.{ts,tsx}"], ignores: ["src-main/engine/**", "native/**", "fixtures/**"], rules: { "layers/only-engine-imports-node-llama-cpp": "error" } },
    { files: ["**/*.{ts,tsx}"], ignores: ["src-main/app/**"], rules: { "layers/only-app-imports-electron": "error" } },
);
