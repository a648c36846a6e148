import { describe, expect, it } from "vitest";
import { GenerationQueue } from "./queue.ts";

// A job that runs until `finish` is called.
function heldJob(log: string[], name: string): { job: () => Promise<void>; finish: () => void } {
    let finish = () => {};
    const finished = new Promise<void>((resolve) => {
        finish = resolve;
    });
    return {
        job: async () => {
            log.push(`${name} started`);
            await finished;
            log.push(`${name} done`);
        },
        finish: () => finish(),
    };
}

describe("the generation queue", () => {
    it("runs jobs one at a time in the order they were admitted", async () => {
        const queue = new GenerationQueue(3);
        const log: string[] = [];
        const first = heldJob(log, "first");
        const second = heldJob(log, "second");
        const ran = [queue.run(first.job), queue.run(second.job)];
        await new Promise((resolve) => setImmediate(resolve));
        expect(log).toEqual(["first started"]);
        second.finish();
        first.finish();
        await Promise.all(ran);
        expect(log).toEqual(["first started", "first done", "second started", "second done"]);
        expect(queue.idle()).toBe(true);
    });

    it("gives the place of a job stopped while it waits back at once, and still runs that job in its turn", async () => {
        const queue = new GenerationQueue(2);
        const log: string[] = [];
        const held = heldJob(log, "held");
        const running = queue.run(held.job);
        const stop = new AbortController();
        const waiting = queue.run(async () => void log.push(stop.signal.aborted ? "stopped job ended at once" : "stopped job ran"), stop.signal);
        expect(() => queue.run(async () => {})).toThrow(expect.objectContaining({ error: expect.objectContaining({ code: "busy" }) }));
        stop.abort();
        const next = queue.run(async () => void log.push("next"));
        held.finish();
        await Promise.all([running, waiting, next]);
        expect(log).toEqual(["held started", "held done", "stopped job ended at once", "next"]);
        expect(queue.idle()).toBe(true);
    });

    it("refuses a job past its bound with a typed busy error, before the job saves anything", async () => {
        const queue = new GenerationQueue(1);
        const held = heldJob([], "held");
        const running = queue.run(held.job);
        const saved: string[] = [];
        expect(() => queue.start(() => saved.push("chat B"), async () => {})).toThrow(expect.objectContaining({ error: expect.objectContaining({ code: "busy" }) }));
        expect(() => queue.run(async () => {})).toThrow(expect.objectContaining({ error: expect.objectContaining({ code: "busy" }) }));
        expect(saved).toEqual([]);
        held.finish();
        await running;
        expect(queue.start(() => "chat B saved", async () => {})).toBe("chat B saved");
    });

    it("admits a new request as soon as a job leaves, before its last steps end", async () => {
        const queue = new GenerationQueue(1);
        const held = heldJob([], "last steps");
        const admittedOnHearing: string[] = [];
        queue.start(() => "reply", async (_reply, leave) => {
            leave();
            admittedOnHearing.push(queue.start(() => "next reply", async () => {}));
            await held.job();
        });
        await new Promise((resolve) => setImmediate(resolve));
        expect(admittedOnHearing).toEqual(["next reply"]);
        held.finish();
    });

    it("gives the place back when preparing a job fails, and when a job fails", async () => {
        const queue = new GenerationQueue(1);
        expect(() => queue.start(() => {
            throw new Error("disk full");
        }, async () => {})).toThrow("disk full");
        expect(queue.idle()).toBe(true);
        await expect(queue.run(async () => {
            throw new Error("engine died");
        })).rejects.toThrow("engine died");
        expect(queue.idle()).toBe(true);
    });
});
