// Renders an SVG to PNG in headless Chromium (Debian's chromium, or CHROMIUM_PATH).
import fs from "node:fs";
import { chromium } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const chromiumArgs = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"];

export async function svgToPng(svg: string, file: string): Promise<void> {
    if (!fs.existsSync(chromiumPath)) {
        throw new Error(`PNG charts are drawn by Chromium, which is not at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`);
    }
    const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
    try {
        const page = await browser.newPage();
        await page.setContent(`<!doctype html><body style="margin:0">${svg}</body>`);
        await page.locator("svg").screenshot({ path: file });
    } finally {
        await browser.close();
    }
}
