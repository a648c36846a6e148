import { useMemo, useState, type ReactNode } from "react";
import { parseMarkdown, type Block, type Inline } from "../markdown.ts";

function renderInline(nodes: Inline[]): ReactNode[] {
    return nodes.map((node, index) => {
        switch (node.kind) {
            case "text": return node.text;
            case "code": return <code key={index}>{node.text}</code>;
            case "strong": return <strong key={index}>{renderInline(node.children)}</strong>;
            case "em": return <em key={index}>{renderInline(node.children)}</em>;
            case "link": return <a key={index} href={node.href} target="_blank" rel="noopener noreferrer">{renderInline(node.children)}</a>;
        }
    });
}

function CodeBlock({ lang, text }: { lang: string; text: string }) {
    const [copied, setCopied] = useState(false);
    const copy = () => void navigator.clipboard.writeText(text).then(() => {
        setCopied(true);
        setTimeout(() => setCopied(false), 1500);
    });
    return (
        <div className="code-block">
            <div className="code-head">
                <span>{lang || "text"}</span>
                <button type="button" onClick={copy} aria-label={`Copy ${lang || "code"} block`}>{copied ? "Copied" : "Copy"}</button>
            </div>
            <pre><code>{text}</code></pre>
        </div>
    );
}

function renderBlock(block: Block, index: number): ReactNode {
    switch (block.kind) {
        case "heading": {
            const Tag = `h${Math.min(block.level + 2, 6)}` as "h3";
            return <Tag key={index}>{renderInline(block.children)}</Tag>;
        }
        case "paragraph": return <p key={index}>{renderInline(block.children)}</p>;
        case "code": return <CodeBlock key={index} lang={block.lang} text={block.text} />;
        case "list": {
            const items = block.items.map((item, i) => <li key={i}>{renderInline(item)}</li>);
            return block.ordered ? <ol key={index}>{items}</ol> : <ul key={index}>{items}</ul>;
        }
    }
}

export function Markdown({ text }: { text: string }) {
    const blocks = useMemo(() => parseMarkdown(text), [text]);
    return <div className="markdown">{blocks.map(renderBlock)}</div>;
}
