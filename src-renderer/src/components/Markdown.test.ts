import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { Markdown } from "./Markdown.tsx";

const render = (text: string): string => renderToStaticMarkup(createElement(Markdown, { text }));

describe("reply markdown", () => {
    it("renders headings below the page's, lists, GFM tables and strikethrough", () => {
        const html = render("# Title\n\n- one\n- two\n\n1. first\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ **bold** *it*");
        expect(html).toContain("<h3>Title</h3>");
        expect(html).toContain("<ul>\n<li>one</li>\n<li>two</li>\n</ul>");
        expect(html).toContain("<ol>\n<li>first</li>\n</ol>");
        expect(html).toMatch(/<table>.*<th>a<\/th>.*<td>2<\/td>.*<\/table>/s);
        expect(html).toContain("<del>gone</del> <strong>bold</strong> <em>it</em>");
    });

    it("highlights a fenced code block and gives it a Copy button", () => {
        const html = render("```ts\nconst a = \"x\";\n```");
        expect(html).toContain('<span>ts</span><button type="button" aria-label="Copy ts block">Copy</button>');
        expect(html).toContain('<code class="hljs language-ts"><span class="hljs-keyword">const</span> a = <span class="hljs-string">&quot;x&quot;</span>;');
    });

    it("never renders raw HTML from a reply", () => {
        const html = render("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)> <b>bold</b>\n\n![pixel](https://evil.example/p.png)");
        // shown as the text it is, never as elements
        expect(html).toBe('<div class="markdown">&lt;script&gt;alert(1)&lt;/script&gt;\n<p>&lt;img src=x onerror=alert(1)&gt; &lt;b&gt;bold&lt;/b&gt;</p>\n<p><span>pixel</span></p></div>');
    });

    it("links only to https; other links stay as their text", () => {
        const html = render("[ok](https://x.org) [js](javascript:alert(1)) [plain](http://x.org) [file](file:///etc/passwd) [rel](../secret) www.example.com");
        expect(html).toContain('<a href="https://x.org" target="_blank" rel="noopener noreferrer">ok</a>');
        expect(html.match(/<a /g)).toHaveLength(1);
        expect(html).toContain("<span>js</span> <span>plain</span> <span>file</span> <span>rel</span> <span>www.example.com</span>");
    });

    it("renders 100k opening brackets as the text they are", () => {
        const brackets = "[".repeat(100_000);
        expect(render(brackets)).toBe(`<div class="markdown"><p>${brackets}</p></div>`);
    });
});
