import { describe, expect, it } from "vitest";
import { parseInline, parseMarkdown } from "./markdown.ts";

describe("markdown subset", () => {
    it("parses headings, paragraphs, lists and fenced code with a language", () => {
        const blocks = parseMarkdown("# Title\n\nSome **bold** and *it*.\n\n- one\n- two\n1. first\n\n```ts\nconst a = 1;\n```\nafter");
        expect(blocks.map((block) => block.kind)).toEqual(["heading", "paragraph", "list", "list", "code", "paragraph"]);
        expect(blocks[2]).toMatchObject({ ordered: false, items: [[{ kind: "text", text: "one" }], [{ kind: "text", text: "two" }]] });
        expect(blocks[3]).toMatchObject({ ordered: true });
        expect(blocks[4]).toEqual({ kind: "code", lang: "ts", text: "const a = 1;" });
    });

    it("keeps an unclosed fence (a streaming reply) as code", () => {
        expect(parseMarkdown("```py\nprint(1)")).toEqual([{ kind: "code", lang: "py", text: "print(1)" }]);
    });

    it("parses inline code, emphasis and only https links", () => {
        expect(parseInline("a `x*y*` **b _c_**")).toEqual([
            { kind: "text", text: "a " },
            { kind: "code", text: "x*y*" },
            { kind: "text", text: " " },
            { kind: "strong", children: [{ kind: "text", text: "b " }, { kind: "em", children: [{ kind: "text", text: "c" }] }] },
        ]);
        expect(parseInline("[ok](https://x.org)")).toEqual([{ kind: "link", href: "https://x.org", children: [{ kind: "text", text: "ok" }] }]);
        expect(parseInline("[bad](javascript:alert(1))")[0]).toEqual({ kind: "text", text: "[bad](javascript:alert(1)" });
    });

    it("does not treat snake_case as emphasis", () => {
        expect(parseInline("a snake_case_name")).toEqual([{ kind: "text", text: "a snake_case_name" }]);
    });
});
