// Next-token distributions over a token sequence, for the compare view's KLD
// against kv-f16 and perplexity.
import type { Token } from "node-llama-cpp";
import type { EngineContext } from "./engine.ts";

// The full softmax (temperature 1, no truncation) after each token from
// `firstScored - 1` on, so that result[i] predicts tokens[firstScored + i].
export async function nextTokenDistributions(context: EngineContext, tokens: readonly number[], firstScored: number): Promise<Map<number, number>[]> {
    const sequence = context.sequence();
    await sequence.clearHistory();
    const scoreFrom = Math.max(0, firstScored - 1);
    const input = tokens.slice(0, -1).map((token, index) => index >= scoreFrom
        ? [token as Token, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const
        : token as Token);
    const output = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
    const distributions: Map<number, number>[] = [];
    for (let index = scoreFrom; index < tokens.length - 1; index++) distributions.push(new Map(output[index]?.next.probabilities ?? []));
    return distributions;
}

const floor = 1e-10;

// Mean KL(reference ‖ test) over positions.
export function meanKlDivergence(reference: readonly Map<number, number>[], test: readonly Map<number, number>[]): number {
    let total = 0;
    for (let position = 0; position < reference.length; position++) {
        const q = test[position]!;
        for (const [token, p] of reference[position]!) {
            if (p > 0) total += p * Math.log(p / Math.max(q.get(token) ?? 0, floor));
        }
    }
    return total / Math.max(1, reference.length);
}

// exp of the mean negative log-probability of each actual next token.
export function perplexity(distributions: readonly Map<number, number>[], tokens: readonly number[], firstScored: number): number {
    let negativeLogSum = 0;
    for (let index = 0; index < distributions.length; index++) {
        negativeLogSum -= Math.log(Math.max(distributions[index]!.get(tokens[firstScored + index]!) ?? 0, floor));
    }
    return Math.exp(negativeLogSum / Math.max(1, distributions.length));
}
