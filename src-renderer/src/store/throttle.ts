// Calls flush at most once per interval, on the trailing edge: bursts of
// events become one store update (the charts redraw ≤ 1000/interval times a second).
export function throttle(flush: () => void, intervalMs: number): () => void {
    let last = -Infinity;
    let timer: ReturnType<typeof setTimeout> | null = null;
    return () => {
        if (timer !== null) return;
        const wait = Math.max(0, last + intervalMs - Date.now());
        timer = setTimeout(() => {
            timer = null;
            last = Date.now();
            flush();
        }, wait);
    };
}
