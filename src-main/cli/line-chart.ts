// A line chart as SVG (rendered to PNG by render-png.ts): one line per series
// over a log2 x axis, for `npm run bench`'s speed and memory against depth.

export interface ChartSeries {
    name: string;
    color: string;
    dashed?: boolean;
    points: { x: number; y: number }[];
}

export interface LineChart {
    title: string;
    xLabel: string;
    yLabel: string;
    series: ChartSeries[];
}

export function lineChartSvg(chart: LineChart): string {
    const width = 900;
    const height = 560;
    const margin = { left: 80, right: 210, top: 50, bottom: 60 };
    const points = chart.series.flatMap((series) => series.points);
    const xs = points.map((point) => Math.log2(point.x));
    const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
    const yMax = Math.max(...points.map((point) => point.y)) * 1.1;
    const px = (x: number) => margin.left + ((Math.log2(x) - xMin) / Math.max(xMax - xMin, 1e-9)) * (width - margin.left - margin.right);
    const py = (y: number) => height - margin.bottom - (y / yMax) * (height - margin.top - margin.bottom);
    const parts: string[] = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
        `<rect width="100%" height="100%" fill="white"/>`,
        `<text x="${(width - margin.right + margin.left) / 2}" y="28" text-anchor="middle" font-size="17">${chart.title}</text>`,
        `<text x="${(width - margin.right + margin.left) / 2}" y="${height - 16}" text-anchor="middle">${chart.xLabel}</text>`,
        `<text transform="translate(22 ${height / 2}) rotate(-90)" text-anchor="middle">${chart.yLabel}</text>`,
    ];
    const step = niceStep(yMax / 6);
    for (let y = 0; y <= yMax; y += step) {
        parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`,
            `<text x="${margin.left - 8}" y="${py(y) + 4}" text-anchor="end">${Number(y.toPrecision(3))}</text>`);
    }
    for (const x of [...new Set(points.map((point) => point.x))]) {
        parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${margin.top}" y2="${height - margin.bottom}" stroke="#ddd"/>`,
            `<text x="${px(x)}" y="${height - margin.bottom + 18}" text-anchor="middle">${x}</text>`);
    }
    chart.series.forEach((series, i) => {
        const path = series.points.map((point, j) => `${j === 0 ? "M" : "L"}${px(point.x)},${py(point.y)}`).join(" ");
        const dash = series.dashed ? ` stroke-dasharray="7 4"` : "";
        parts.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2.5"${dash}/>`,
            ...series.points.map((point) => `<circle cx="${px(point.x)}" cy="${py(point.y)}" r="4" fill="${series.color}"/>`),
            `<line x1="${width - margin.right + 16}" x2="${width - margin.right + 46}" y1="${margin.top + 10 + i * 22}" y2="${margin.top + 10 + i * 22}" stroke="${series.color}" stroke-width="2.5"${dash}/>`,
            `<text x="${width - margin.right + 52}" y="${margin.top + 14 + i * 22}">${series.name}</text>`);
    });
    parts.push("</svg>");
    return parts.join("\n");
}

// 1, 2 or 5 times a power of ten, at least raw
function niceStep(raw: number): number {
    const power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((factor) => factor * power).find((step) => step >= raw)!;
}
