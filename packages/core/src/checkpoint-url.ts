/**
 * Loading a checkpoint from a URL with `fetch`, in any runtime that has it (browsers, Node 18+):
 * a static web server holding `config.json` and `model.safetensors` (or Hugging Face shards and
 * `model.safetensors.index.json`). Responses are read within size bounds and checked like files.
 */
import type { BaseModel } from './base-model';
import {
  CONFIG_FILE,
  MAX_CONFIG_BYTES,
  MAX_INDEX_BYTES,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  buildModel,
  checkShard,
  fail,
  parseWeightsIndex,
  planRestore,
  restoreFromBytes,
  type WeightsSource,
} from './checkpoint-restore';
import { MieBackendError, causeMessage } from './errors';
import type { ModelClass } from './model-registry';
import { decodeSafetensorsEntry, parseSafetensorsHeader, type SafetensorsHeader } from './safetensors';

/** Largest weights response read into one buffer (what one ArrayBuffer can hold in every browser). */
const MAX_WEIGHTS_BYTES = 2 ** 31 - 1;

/** The URL of `name` inside the checkpoint at `base` (a directory: a missing trailing slash is added). */
function within(base: URL, name: string): URL {
  const directory = new URL(base.href);
  if (!directory.pathname.endsWith('/')) directory.pathname += '/';
  return new URL(name, directory);
}

/** The body of `url`, at most `maxBytes`; `undefined` for a 404 (the file is not there). */
async function fetchBytes(url: URL, maxBytes: number, where: string): Promise<Uint8Array | undefined> {
  if (typeof fetch !== 'function') throw new MieBackendError(`${where}: this runtime has no fetch, so checkpoints cannot be loaded from a URL.`);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    fail(where, `cannot fetch ${url.href}: ${causeMessage(error)}`);
  }
  if (response.status === 404) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!response.ok) fail(where, `cannot fetch ${url.href}: HTTP ${response.status} ${response.statusText}`);
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    fail(where, `${url.href} is ${declared} bytes, above the ${maxBytes}-byte limit`);
  }
  // Read the body in pieces so that a server sending more than it declared is stopped at the limit.
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array(await response.arrayBuffer());
  const pieces: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > maxBytes) {
      await reader.cancel().catch(() => undefined);
      fail(where, `${url.href} is more than the ${maxBytes}-byte limit`);
    }
    pieces.push(value);
  }
  if (pieces.length === 1) return pieces[0];
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return bytes;
}

/** Loads the checkpoint at `base` (`config.json` and the weights beside it) as a `expected`. */
export async function loadFromUrl(expected: ModelClass, base: URL, where: string): Promise<BaseModel> {
  const config = await fetchBytes(within(base, CONFIG_FILE), MAX_CONFIG_BYTES, where);
  if (config === undefined) fail(where, `${within(base, CONFIG_FILE).href} was not found (HTTP 404)`);
  const single = await fetchBytes(within(base, WEIGHTS_FILE), MAX_WEIGHTS_BYTES, where);
  if (single !== undefined) return restoreFromBytes(expected, config, single, where);
  const indexBytes = await fetchBytes(within(base, WEIGHTS_INDEX_FILE), MAX_INDEX_BYTES, where);
  if (indexBytes === undefined) fail(where, `neither ${within(base, WEIGHTS_FILE).href} nor ${within(base, WEIGHTS_INDEX_FILE).href} was found (HTTP 404)`);
  const { metadata, shards } = parseWeightsIndex(indexBytes, where);
  const files: Array<{ bytes: Uint8Array; header: SafetensorsHeader }> = [];
  const entries: WeightsSource['entries'] = new Map();
  for (const [shard, expectedNames] of shards) {
    const bytes = await fetchBytes(within(base, shard), MAX_WEIGHTS_BYTES, where);
    if (bytes === undefined) fail(where, `shard ${within(base, shard).href} was not found (HTTP 404)`);
    let header: SafetensorsHeader;
    try {
      header = parseSafetensorsHeader(bytes, bytes.length);
    } catch (error) {
      fail(where, `${shard}: ${(error as Error).message}`);
    }
    if (metadata['mie.checkpointId'] !== undefined && header.metadata['mie.checkpointId'] !== metadata['mie.checkpointId']) {
      fail(where, `shard ${shard} belongs to another save than ${WEIGHTS_INDEX_FILE}`);
    }
    checkShard(shard, header.entries, expectedNames, where);
    files.push({ bytes, header });
    for (const entry of header.entries) entries.set(entry.name, { entry, file: files.length - 1 });
  }
  const source: WeightsSource = { label: WEIGHTS_INDEX_FILE, entries, metadata };
  const plan = planRestore(expected, config, source, where);
  return buildModel(plan, source, (name) => {
    const { entry, file } = entries.get(name)!;
    const { bytes, header } = files[file];
    return decodeSafetensorsEntry(entry, bytes.subarray(header.bufferStart + entry.begin, header.bufferStart + entry.end));
  }, where);
}
