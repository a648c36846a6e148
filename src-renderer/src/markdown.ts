// A small Markdown subset parsed into a tree that components turn into React
// elements: never HTML strings, so a model's output cannot inject markup.
export type Inline =
    | { kind: "text"; text: string }
    | { kind: "code"; text: string }
    | { kind: "strong" | "em"; children: Inline[] }
    | { kind: "link"; href: string; children: Inline[] };

export type Block =
    | { kind: "heading"; level: number; children: Inline[] }
    | { kind: "paragraph"; children: Inline[] }
    | { kind: "code"; lang: string; text: string }
    | { kind: "list"; ordered: boolean; items: Inline[][] };

const inlinePattern = /`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)/;

export function parseInline(text: string): Inline[] {
    const out: Inline[] = [];
    let rest = text;
    for (let match = inlinePattern.exec(rest); match; match = inlinePattern.exec(rest)) {
        if (match.index > 0) out.push({ kind: "text", text: rest.slice(0, match.index) });
        const [whole, code, strong, star, underscore, label, href] = match;
        if (code !== undefined) out.push({ kind: "code", text: code });
        else if (strong !== undefined) out.push({ kind: "strong", children: parseInline(strong) });
        else if (star !== undefined || underscore !== undefined) out.push({ kind: "em", children: parseInline(star ?? underscore ?? "") });
        // only https links become links; anything else stays visible as plain text
        else if (href!.startsWith("https://")) out.push({ kind: "link", href: href!, children: parseInline(label!) });
        else out.push({ kind: "text", text: whole });
        rest = rest.slice(match.index + whole.length);
    }
    if (rest) out.push({ kind: "text", text: rest });
    return out;
}

const fence = /^```\s*([\w+#.-]*)\s*$/;
const heading = /^(#{1,6})\s+(.*)$/;
const bullet = /^\s*[-*+]\s+(.*)$/;
const numbered = /^\s*\d+[.)]\s+(.*)$/;

export function parseMarkdown(source: string): Block[] {
    const lines = source.replace(/\r\n/g, "\n").split("\n");
    const blocks: Block[] = [];
    let paragraph: string[] = [];
    const endParagraph = () => {
        if (paragraph.length) blocks.push({ kind: "paragraph", children: parseInline(paragraph.join("\n")) });
        paragraph = [];
    };
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const opened = fence.exec(line);
        if (opened) {
            endParagraph();
            const body: string[] = [];
            // an unclosed fence (a reply still streaming) runs to the end
            for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
            blocks.push({ kind: "code", lang: opened[1] ?? "", text: body.join("\n") });
            continue;
        }
        const title = heading.exec(line);
        const item = bullet.exec(line) ?? numbered.exec(line);
        if (title) {
            endParagraph();
            blocks.push({ kind: "heading", level: title[1]!.length, children: parseInline(title[2]!) });
        } else if (item) {
            endParagraph();
            const ordered = !bullet.test(line);
            const last = blocks.at(-1);
            if (last?.kind === "list" && last.ordered === ordered) last.items.push(parseInline(item[1]!));
            else blocks.push({ kind: "list", ordered, items: [parseInline(item[1]!)] });
        } else if (line.trim() === "") endParagraph();
        else paragraph.push(line);
    }
    endParagraph();
    return blocks;
}
