import dns from "node:dns/promises";
import { describe, expect, it } from "vitest";
import { packageApp } from "./dist.ts";

const githubReachable = await dns.lookup("github.com").then(() => true, () => false);

describe("npm run dist", () => {
    // Where GitHub is reachable this would build real packages (minutes); that is `npm run dist` itself.
    it.skipIf(githubReachable)("says clearly that Electron's binaries cannot be downloaded here", () => {
        const { status, message } = packageApp(["--linux", "AppImage"]);
        expect(status).toBe(1);
        expect(message).toContain("could not download Electron's binaries");
        expect(message).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
    }, 300_000);
});
