// The last line of defence for work that runs unawaited (a download, a reply, a
// compare run): a promise rejection that nothing handles is logged, and the
// process keeps running. Node's default would end it, and with it every reply
// and download in flight. Each front door (npm run serve, the Electron main
// process) installs it once, at start.
export function logUnhandledRejections(log: (message: string) => void = console.error): void {
    process.on("unhandledRejection", (reason) => {
        const detail = reason instanceof Error ? reason.stack ?? reason.message : String(reason);
        log(`Unhandled error (logged; the app keeps running): ${detail}`);
    });
}
