// A model library in a folder, and the download events it sends, for the library's tests.
import type { ApiEvent, DownloadInfo, ModelMetadata } from "../src-main/api/contract.ts";
import { EventBus } from "../src-main/services/events.ts";
import { ModelLibrary } from "../src-main/services/library.ts";

export function libraryIn(dir: string, readMetadata: (filePath: string) => Promise<ModelMetadata>): { library: ModelLibrary; events: EventBus } {
    const events = new EventBus();
    return { library: new ModelLibrary(() => dir, events, readMetadata), events };
}

// Resolves when the download reaches one of the given states.
export function settled(events: EventBus, downloadId: string, states: DownloadInfo["state"][]): Promise<DownloadInfo> {
    return new Promise((resolve) => {
        const unsubscribe = events.subscribe((event: ApiEvent) => {
            if (event.type === "download" && event.download.id === downloadId && states.includes(event.download.state)) {
                unsubscribe();
                resolve(event.download);
            }
        });
    });
}
