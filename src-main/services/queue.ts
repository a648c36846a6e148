// The one generation queue of the app: chat replies, compare runs and one-off
// (OpenAI) completions run one at a time, in the order they were admitted.
// It holds a bounded number of jobs, the running one included; past that a
// request is refused with a typed `busy` error before anything is saved.
import { Lock } from "../engine/lock.ts";
import { RequestError } from "./errors.ts";

export class GenerationQueue {
    private readonly order = new Lock();
    private admitted = 0;

    constructor(readonly capacity: number) {}

    // Admits a job and runs it in turn; the caller waits for its result. A job whose
    // signal aborts gives its place back at once (see runAdmitted).
    run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
        return this.runAdmitted(this.admit(), job, signal);
    }

    // Admits a job, then runs `prepare` (which saves what the job needs) at
    // once and returns its result; the job gets it when its turn comes. A
    // refused request never reaches `prepare`. The job calls `leave` before it
    // announces its end, so that a request made on hearing it is admitted.
    start<S>(prepare: () => S, job: (prepared: S, leave: () => void) => Promise<void>, signal?: AbortSignal): S {
        const release = this.admit();
        let prepared: S;
        try {
            prepared = prepare();
        } catch (error) {
            release();
            throw error;
        }
        void this.runAdmitted(release, () => job(prepared, release), signal);
        return prepared;
    }

    // Resolves once every job admitted so far has ended.
    settled(): Promise<void> {
        return this.order.settled();
    }

    // Nothing generating and nothing waiting.
    idle(): boolean {
        return this.admitted === 0;
    }

    // Takes a place, or throws busy when the queue is full; returns what gives it back.
    private admit(): () => void {
        if (this.admitted >= this.capacity) {
            throw new RequestError("busy", `${this.admitted} requests are already generating or waiting, the most the queue holds. Wait for one to finish, or stop one.`);
        }
        this.admitted++;
        let held = true;
        return () => {
            if (held) this.admitted--;
            held = false;
        };
    }

    // A stopped job gives its place back when it is stopped, not when it ends: one stopped
    // while it waits would otherwise hold its place until its turn came (the job itself
    // still runs in order, and must end at once when its signal has aborted).
    private runAdmitted<T>(release: () => void, job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
        signal?.addEventListener("abort", release, { once: true });
        return this.order.run(async () => {
            try {
                return await job();
            } finally {
                signal?.removeEventListener("abort", release);
                release();
            }
        });
    }
}
