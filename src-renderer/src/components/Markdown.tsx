// A reply's Markdown (CommonMark + GFM) through react-markdown: never raw HTML
// (react-markdown drops it without rehype-raw), links only to https, no images,
// and code blocks highlighted by rehype-highlight with a Copy button.
import { memo, useState, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import rehypeHighlight from "rehype-highlight";
import remarkGfm from "remark-gfm";

type HastNode = { type: string; value?: string; children?: HastNode[]; properties?: { className?: unknown } };

// The plain text under a syntax tree node: what the Copy button copies.
function textOf(node: HastNode): string {
    return node.value ?? (node.children ?? []).map(textOf).join("");
}

// Only https links survive; any other URL (javascript:, http:, file:, relative) is dropped.
function httpsOnly(url: string): string | undefined {
    return url.startsWith("https://") ? url : undefined;
}

function CodeBlock({ code, children }: { code: HastNode; children: ReactNode }) {
    const [copied, setCopied] = useState(false);
    const className = Array.isArray(code.properties?.className) ? code.properties.className.join(" ") : "";
    const lang = /language-([\w+#.-]+)/.exec(className)?.[1] ?? "";
    const copy = () => void navigator.clipboard.writeText(textOf(code).replace(/\n$/, "")).then(() => {
        setCopied(true);
        setTimeout(() => setCopied(false), 1500);
    });
    return (
        <div className="code-block">
            <div className="code-head">
                <span>{lang || "text"}</span>
                <button type="button" onClick={copy} aria-label={`Copy ${lang || "code"} block`}>{copied ? "Copied" : "Copy"}</button>
            </div>
            <pre>{children}</pre>
        </div>
    );
}

// A reply's headings sit two levels below the page's own.
const heading = (Tag: "h3" | "h4" | "h5" | "h6") => function Heading({ children }: { children?: ReactNode }) {
    return <Tag>{children}</Tag>;
};

const components: Components = {
    h1: heading("h3"),
    h2: heading("h4"),
    h3: heading("h5"),
    h4: heading("h6"),
    h5: heading("h6"),
    h6: heading("h6"),
    a: ({ href, children }) => href === undefined ? <span>{children}</span> : <a href={href} target="_blank" rel="noopener noreferrer">{children}</a>,
    // an image would be a request to anywhere: its description stands in for it
    img: ({ alt }) => <span>{alt}</span>,
    pre: ({ node, children }) => {
        const code = node?.children.find((child) => child.type === "element" && child.tagName === "code");
        return code === undefined ? <pre>{children}</pre> : <CodeBlock code={code as HastNode}>{children}</CodeBlock>;
    },
};

// Memoized: a finished message is parsed once, not on every streamed token elsewhere.
export const Markdown = memo(function Markdown({ text }: { text: string }) {
    return (
        <div className="markdown">
            <ReactMarkdown remarkPlugins={[remarkGfm]} rehypePlugins={[rehypeHighlight]} urlTransform={httpsOnly} components={components}>{text}</ReactMarkdown>
        </div>
    );
});
