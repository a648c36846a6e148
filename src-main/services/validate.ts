// Every value from outside (a request, a file read from disk) is checked
// against its zod schema from the contract: a typed error for bad input, never a crash.
import type { z } from "zod";
import { describeIssues } from "../api/contract.ts";
import { RequestError } from "./errors.ts";

// The value as its schema reads it, or a bad-request error naming the field at fault.
export function checked<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
    const result = schema.safeParse(value);
    if (!result.success) throw new RequestError("bad-request", describeIssues(result.error));
    return result.data;
}
