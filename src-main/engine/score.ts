// Scores of next-token distributions (EngineContext.nextTokenDistributions), for
// the compare view's KLD against kv-f16 and perplexity.

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
