// Debian's Chromium driven by playwright-core; no browser download.
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { repoRoot } from "../native/paths.ts";
import { chromiumArgs, chromiumPath } from "../src-main/cli/render-png.ts";

export const screenshotsDir = path.join(repoRoot, "test-results", "screenshots");

export function launchChromium(): Promise<Browser> {
    return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

export async function saveScreenshot(page: Page, name: string): Promise<string> {
    fs.mkdirSync(screenshotsDir, { recursive: true });
    const file = path.join(screenshotsDir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}
