// Runs npm scripts one after another, as `npm test` does, and prints how long each took:
// the phases CI's time is made of. Stops at the first that fails, with its exit status.
import { spawnSync } from "node:child_process";

const timings: string[] = [];
let status = 0;
for (const script of process.argv.slice(2)) {
    const started = performance.now();
    const result = spawnSync("npm", ["run", script], { stdio: "inherit", shell: process.platform === "win32" });
    timings.push(`${script} ${Math.round((performance.now() - started) / 1000)} s`);
    status = result.status ?? 1;
    if (status !== 0) break;
}
console.log(`[phases] ${timings.join(", ")}${status === 0 ? "" : " (failed)"}`);
process.exit(status);
