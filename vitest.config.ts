import { defineConfig } from "vitest/config";

// Unit and engine tests: real addon, real fixture models, no mocks.
export default defineConfig({
    test: {
        include: ["src-main/**/*.test.ts", "src-renderer/**/*.test.ts", "native/tests/**/*.test.ts", "fixtures/**/*.test.ts"],
        pool: "forks",
        fileParallelism: false,
        testTimeout: 120_000,
        hookTimeout: 120_000,
    },
});
