// A minimal Server-Sent Events parser: the server sends `data: <json>\n\n`
// frames; a network chunk may end mid-frame, so the tail is carried over.
export function parseSseFrames(buffer: string): { data: string[]; rest: string } {
    const frames = buffer.split(/\r?\n\r?\n/);
    const rest = frames.pop() ?? "";
    const data: string[] = [];
    for (const frame of frames) {
        const lines = frame.split(/\r?\n/).filter((line) => line.startsWith("data:"));
        if (lines.length > 0) data.push(lines.map((line) => line.slice(5).replace(/^ /, "")).join("\n"));
    }
    return { data, rest };
}

// Reconnect delay after the n-th consecutive failure: 0.5 s doubling up to 10 s.
export function backoffMs(failures: number): number {
    return Math.min(10_000, 500 * 2 ** Math.max(0, failures - 1));
}
