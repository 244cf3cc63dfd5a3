/** The error a Node-only capability raises in a browser bundle (see the *-browser.ts modules). */
import { MieBackendError } from './errors';

/** Throws a `MieBackendError` saying that `what` needs Node (and what a browser can do instead). */
export function nodeOnly(what: string, instead: string): never {
  throw new MieBackendError(`${what} needs Node's file system, which a browser does not have; ${instead}.`);
}
