import { defineConfig } from "vitest/config";

// End-to-end tests: the real UI in Debian's Chromium through the local server.
export default defineConfig({
    test: {
        root: import.meta.dirname + "/..",
        include: ["e2e/**/*.e2e.ts"],
        pool: "forks",
        fileParallelism: false,
        testTimeout: 120_000,
        hookTimeout: 120_000,
    },
});
