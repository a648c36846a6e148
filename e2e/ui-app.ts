// One fresh app for a UI test file: services in a temporary folder, the local
// server, and a Chromium page on it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { repoRoot } from "../native/paths.ts";
import { startServer } from "../src-main/server/server.ts";
import { Services, type ServicesOptions } from "../src-main/services/services.ts";
import { launchChromium } from "./browser.ts";

export interface UiApp {
    services: Services;
    appDir: string;
    // the server's per-run token (the page keeps it out of its address after the first load)
    token: string;
    page: Page;
    // uncaught exceptions in the page
    pageErrors: string[];
    close(): Promise<void>;
}

export async function openUiApp(prepare: (services: Services) => Promise<void> = async () => {}, options: ServicesOptions = {}): Promise<UiApp> {
    const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "xq-ui-"));
    const services = new Services({ appDir, maxThreads: 2, ...options });
    await prepare(services);
    const server = await startServer({ services, staticDir: path.join(repoRoot, "dist-renderer") });
    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    await page.goto(server.url);
    return {
        services, appDir, token: server.token, page, pageErrors,
        close: async () => {
            await browser.close();
            await server.close();
            await services.dispose();
            fs.rmSync(appDir, { recursive: true, force: true });
        },
    };
}
