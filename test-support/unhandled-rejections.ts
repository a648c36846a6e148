// The promise rejections that nothing handled while `run` ran (and a moment after). The
// test takes them over from the test runner meanwhile, so that it can judge them itself.
export async function unhandledRejectionsDuring(run: () => Promise<void>): Promise<Error[]> {
    const reasons: Error[] = [];
    const runners = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", (reason) => reasons.push(reason as Error));
    try {
        await run();
        await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
        process.removeAllListeners("unhandledRejection");
        for (const listener of runners) process.on("unhandledRejection", listener);
    }
    return reasons;
}
