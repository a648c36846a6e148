export const mib = (bytes: number): number => bytes / 2 ** 20;

export function formatBytes(bytes: number): string {
    if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    if (bytes >= 2 ** 20) return `${mib(bytes).toFixed(1)} MiB`;
    return `${(bytes / 1024).toFixed(1)} KiB`;
}

// "45 s", "4 min 10 s"
export function formatDuration(seconds: number): string {
    const whole = Math.max(1, Math.round(seconds));
    return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

// Saves a Blob through a temporary link: works in Electron and in a browser.
export function downloadBlob(blob: Blob, fileName: string): void {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = fileName;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
}
