import { Bar, BarChart, CartesianGrid, Cell, Tooltip, XAxis, YAxis } from "recharts";
import { modeColor } from "./memoryRows.ts";

// One measure per cache mode as a bar chart with its caption, in a <figure> that exportChartsPng draws.
export function BarFigure({ title, testId, data }: { title: string; testId: string; data: { mode: string; value: number }[] }) {
    return (
        <figure data-testid={testId}>
            <figcaption>{title}</figcaption>
            <BarChart width={300} height={240} data={data}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="mode" fontSize={11} />
                <YAxis fontSize={11} />
                <Tooltip formatter={(value) => (typeof value === "number" ? value.toFixed(3) : value)} />
                <Bar dataKey="value" name={title} isAnimationActive={false}>
                    {data.map((entry, index) => <Cell key={entry.mode} fill={modeColor(index, data.length)} />)}
                </Bar>
            </BarChart>
        </figure>
    );
}
