// npm run serve: the UI in a browser at http://127.0.0.1:PORT/.
import path from "node:path";
import { repoRoot } from "../../native/paths.ts";
import { logUnhandledRejections } from "../services/process-guard.ts";
import { Services } from "../services/services.ts";
import { startServer } from "./server.ts";

logUnhandledRejections();

const portArgument = process.argv.indexOf("--port");
const port = portArgument >= 0 ? Number(process.argv[portArgument + 1]) : Number(process.env.XQ_PORT ?? 5170);
const services = new Services();
const server = await startServer({ services, staticDir: path.join(repoRoot, "dist-renderer"), port });
console.log(`XQuant Desktop is serving on ${server.url}\n(open this exact address: the token after # lets the page use the engine)`);

const shutdown = async () => {
    await server.close();
    await services.dispose();
    process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
