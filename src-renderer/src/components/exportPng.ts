import { downloadBlob } from "./format.ts";

function svgImage(svg: SVGSVGElement): Promise<HTMLImageElement> {
    const markup = new XMLSerializer().serializeToString(svg);
    const image = new Image();
    // a data: URL, because the page's CSP allows data: images and not blob: ones
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(markup)}`;
    return image.decode().then(() => image);
}

const titleHeight = 28;

// Draws every chart (a <figure> holding a recharts SVG and a caption) inside
// the container side by side on a white canvas and saves it as a PNG.
export async function exportChartsPng(container: HTMLElement, fileName: string): Promise<void> {
    const figures = [...container.querySelectorAll("figure")].flatMap((figure) => {
        const svg = figure.querySelector<SVGSVGElement>("svg.recharts-surface");
        return svg ? [{ title: figure.querySelector("figcaption")?.textContent ?? "", svg }] : [];
    });
    const images = await Promise.all(figures.map((figure) => svgImage(figure.svg)));
    const canvas = document.createElement("canvas");
    canvas.width = images.reduce((sum, image) => sum + image.width, 0);
    canvas.height = titleHeight + Math.max(0, ...images.map((image) => image.height));
    const context = canvas.getContext("2d")!;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#222";
    context.font = "bold 15px system-ui, sans-serif";
    let x = 0;
    images.forEach((image, index) => {
        context.fillText(figures[index]!.title, x + 8, 19);
        context.drawImage(image, x, titleHeight);
        x += image.width;
    });
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/png"));
    if (blob) downloadBlob(blob, fileName);
}
