// The host's timers (Node or a browser): the api layer compiles without either's types.
declare function setTimeout(callback: () => void, ms: number): unknown;

// Calls `send` at most once per interval with the latest value: the first call goes
// out at once, later ones on the interval's trailing edge, and the last value always goes out.
export function throttle<T>(intervalMs: number, send: (value: T) => void): (value: T) => void {
    let last = -Infinity;
    let pending: { value: T } | null = null;
    let waiting = false;
    return (value: T) => {
        const now = Date.now();
        if (now - last >= intervalMs && !waiting) {
            last = now;
            send(value);
            return;
        }
        pending = { value };
        if (waiting) return;
        waiting = true;
        setTimeout(() => {
            waiting = false;
            last = Date.now();
            if (pending !== null) send(pending.value);
            pending = null;
        }, intervalMs - (now - last));
    };
}
