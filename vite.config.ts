import path from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The renderer: built once, loaded by Electron from disk and by the local server over HTTP.
export default defineConfig({
    root: path.resolve(import.meta.dirname, "src-renderer"),
    base: "./",
    plugins: [react()],
    build: {
        outDir: path.resolve(import.meta.dirname, "dist-renderer"),
        emptyOutDir: true,
        // one bundle read from disk or localhost, never over a network: size warnings do not apply
        chunkSizeWarningLimit: 2000,
    },
});
