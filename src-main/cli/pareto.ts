// The Pareto chart of `npm run eval --plot`: KLD against kv-f16 versus cache
// bytes per token, log-log, with the line through llama.cpp's kv-q8_0 and
// kv-q4_0 points as the bar XQuant modes must sit on or below.

// What the chart needs of an eval row (see EvalRow in eval.ts).
export interface ParetoPoint {
    mode: string;
    kld: number;
    bytesPerToken: number;
}

const klDivergenceFloor = 1e-9; // kv-f16 itself has KLD 0

export interface KvLine {
    slope: number;
    intercept: number; // in log10 space: log10(kld) = slope * log10(bytes) + intercept
}

export function kvLine(rows: ParetoPoint[]): KvLine | null {
    const q8 = rows.find((row) => row.mode === "kv-q8_0");
    const q4 = rows.find((row) => row.mode === "kv-q4_0");
    if (!q8 || !q4) return null;
    const x1 = Math.log10(q8.bytesPerToken);
    const y1 = Math.log10(Math.max(q8.kld, klDivergenceFloor));
    const x2 = Math.log10(q4.bytesPerToken);
    const y2 = Math.log10(Math.max(q4.kld, klDivergenceFloor));
    const slope = (y2 - y1) / (x2 - x1);
    return { slope, intercept: y1 - slope * x1 };
}

export function isOnOrBelowLine(line: KvLine, row: ParetoPoint): boolean {
    return Math.log10(Math.max(row.kld, klDivergenceFloor)) <= line.slope * Math.log10(row.bytesPerToken) + line.intercept + 1e-9;
}

export function paretoSvg(rows: ParetoPoint[], title: string): string {
    const width = 900;
    const height = 600;
    const margin = { left: 90, right: 30, top: 50, bottom: 70 };
    const points = rows.filter((row) => row.mode !== "kv-f16");
    const xs = points.map((row) => Math.log10(row.bytesPerToken));
    const ys = points.map((row) => Math.log10(Math.max(row.kld, klDivergenceFloor)));
    const [xMin, xMax] = [Math.floor(Math.min(...xs) * 10) / 10 - 0.1, Math.ceil(Math.max(...xs) * 10) / 10 + 0.1];
    const [yMin, yMax] = [Math.floor(Math.min(...ys)) - 0.5, Math.ceil(Math.max(...ys)) + 0.5];
    const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * (width - margin.left - margin.right);
    const py = (y: number) => height - margin.bottom - ((y - yMin) / (yMax - yMin)) * (height - margin.top - margin.bottom);
    const parts: string[] = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
        `<rect width="100%" height="100%" fill="white"/>`,
        `<text x="${width / 2}" y="28" text-anchor="middle" font-size="17">${title}</text>`,
        `<text x="${width / 2}" y="${height - 20}" text-anchor="middle">cache bytes per token (log scale)</text>`,
        `<text transform="translate(22 ${height / 2}) rotate(-90)" text-anchor="middle">KLD against kv-f16 (log scale)</text>`,
    ];
    for (let y = Math.ceil(yMin); y <= yMax; y++) {
        parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`,
            `<text x="${margin.left - 8}" y="${py(y) + 4}" text-anchor="end">1e${y}</text>`);
    }
    for (const bytes of [100, 200, 500, 1000, 2000, 5000, 10000, 20000]) {
        const x = Math.log10(bytes);
        if (x < xMin || x > xMax) continue;
        parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${margin.top}" y2="${height - margin.bottom}" stroke="#ddd"/>`,
            `<text x="${px(x)}" y="${height - margin.bottom + 18}" text-anchor="middle">${bytes}</text>`);
    }
    parts.push(`<clipPath id="plot"><rect x="${margin.left}" y="${margin.top}" width="${width - margin.left - margin.right}" height="${height - margin.top - margin.bottom}"/></clipPath>`);
    const line = kvLine(rows);
    if (line) {
        const y = (x: number) => line.slope * x + line.intercept;
        parts.push(`<line x1="${px(xMin)}" y1="${py(y(xMin))}" x2="${px(xMax)}" y2="${py(y(xMax))}" stroke="#c62828" stroke-dasharray="6 4" clip-path="url(#plot)"/>`,
            `<text x="${width - margin.right - 4}" y="${margin.top + 16}" text-anchor="end" fill="#c62828">line through kv-q8_0 and kv-q4_0</text>`);
    }
    points.forEach((row, i) => {
        const color = row.mode.startsWith("kv-") ? "#c62828" : "#1565c0";
        parts.push(`<circle cx="${px(xs[i]!)}" cy="${py(ys[i]!)}" r="5" fill="${color}"/>`,
            `<text x="${px(xs[i]!) + 8}" y="${py(ys[i]!) - 6}" fill="${color}">${row.mode}</text>`);
    });
    parts.push("</svg>");
    return parts.join("\n");
}
