// Replace the item with the same id, or append it: how every pushed entity
// (download, compare run, chat summary, message) lands in a list.
export function upsertById<T extends { id: string }>(list: readonly T[], item: T): T[] {
    const index = list.findIndex((entry) => entry.id === item.id);
    if (index < 0) return [...list, item];
    const next = list.slice();
    next[index] = item;
    return next;
}
