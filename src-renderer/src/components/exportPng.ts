import { downloadBlob } from "./format.ts";

function svgImage(svg: SVGSVGElement): Promise<HTMLImageElement> {
    const markup = new XMLSerializer().serializeToString(svg);
    const image = new Image();
    // a data: URL, because the page's CSP allows data: images and not blob: ones
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(markup)}`;
    return image.decode().then(() => image);
}

// Draws every chart (recharts SVG) inside the container side by side on a
// white canvas and saves it as a PNG.
export async function exportChartsPng(container: HTMLElement, fileName: string): Promise<void> {
    const svgs = [...container.querySelectorAll<SVGSVGElement>("svg.recharts-surface")];
    const images = await Promise.all(svgs.map(svgImage));
    const canvas = document.createElement("canvas");
    canvas.width = images.reduce((sum, image) => sum + image.width, 0);
    canvas.height = Math.max(0, ...images.map((image) => image.height));
    const context = canvas.getContext("2d")!;
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    let x = 0;
    for (const image of images) {
        context.drawImage(image, x, 0);
        x += image.width;
    }
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/png"));
    if (blob) downloadBlob(blob, fileName);
}
