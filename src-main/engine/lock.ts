// Runs tasks one at a time, in the order they were given; a failed task does not block the next.
export class Lock {
    private last: Promise<unknown> = Promise.resolve();

    run<T>(task: () => Promise<T>): Promise<T> {
        const result = this.last.then(task, task);
        this.last = result.catch(() => undefined);
        return result;
    }

    // Resolves once every task given so far has finished.
    async settled(): Promise<void> {
        await this.last;
    }
}
