// Names read from disk (a chat's id, an index's file name) become paths only
// through here: a name that would lead out of its folder is refused.
import path from "node:path";
import { RequestError } from "./errors.ts";

// The file `name` directly inside `dir`; throws if `name` has a folder part, is "." or
// "..", or is absolute.
export function fileIn(dir: string, name: string): string {
    const file = path.resolve(dir, name);
    if (path.dirname(file) !== path.resolve(dir) || path.basename(file) !== name) {
        throw new RequestError("internal", `${JSON.stringify(name)} is not a file name inside ${dir}.`);
    }
    return file;
}
