import { describe, expect, it } from "vitest";
import { backoffMs, parseSseFrames } from "./sse.ts";

describe("event stream parsing", () => {
    it("splits complete frames and keeps a partial one for the next chunk", () => {
        const first = parseSseFrames('data: {"a":1}\n\ndata: {"b"');
        expect(first).toEqual({ data: ['{"a":1}'], rest: 'data: {"b"' });
        const second = parseSseFrames(`${first.rest}:2}\n\n: keep-alive\n\n`);
        expect(second).toEqual({ data: ['{"b":2}'], rest: "" });
    });

    it("backs off from half a second up to ten", () => {
        expect([1, 2, 3, 10].map(backoffMs)).toEqual([500, 1000, 2000, 10_000]);
    });
});
