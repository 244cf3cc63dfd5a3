/**
 * What the GPU and browser tests need, and how they run their child processes. Node only.
 *
 * Where Chromium (and with it SwiftShader) is missing, as on a machine with only Node and npm,
 * the tests are skipped with the reason printed; `.ci/run` installs chromium and sets
 * `MIE_REQUIRE_BROWSER_TESTS=1`, which turns a missing piece into a failure instead.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SWIFTSHADER_ICD, chromiumMissing, swiftShaderEnvironment } from '../chromium';

export const PACKAGE_ROOT = join(__dirname, '..', '..');
const DIST = join(PACKAGE_ROOT, 'dist');

/** Why webgpu in Node cannot run here, or null. */
export function webgpuInNodeMissing(): string | null {
  if (!existsSync(SWIFTSHADER_ICD)) return `no Vulkan driver for Dawn: ${SWIFTSHADER_ICD} is missing (apt-get install chromium)`;
  return null;
}

export { chromiumMissing };

/** Why the built suite (dist/) is missing, or null. */
function distMissing(): string | null {
  return existsSync(join(DIST, 'www', 'battery.html')) ? null : 'dist/ is not built (pnpm build)';
}

/**
 * `describe` when `reason` is null; else a skipped `describe` with the reason printed, or (with
 * MIE_REQUIRE_BROWSER_TESTS=1) one failing test that gives the reason.
 */
export function describeWhen(reason: string | null, name: string, body: () => void): void {
  const why = reason ?? distMissing();
  if (why === null) {
    describe(name, body);
  } else if (process.env.MIE_REQUIRE_BROWSER_TESTS === '1') {
    describe(name, () => {
      it('has what it needs (MIE_REQUIRE_BROWSER_TESTS=1)', () => {
        throw new Error(`${name}: ${why}`);
      });
    });
  } else {
    process.stderr.write(`skipping "${name}": ${why}\n`);
    describe.skip(name, body);
  }
}

/**
 * Runs `node dist/<script> ...args <out.json>` (with SwiftShader for Dawn when `gpu`) and
 * resolves to the JSON it wrote. Dawn prints validation messages on stdout: they come back as
 * `log` to explain a failure.
 */
export async function runChild<T>(script: string, args: string[], { gpu = false, timeout = 840_000 } = {}): Promise<T & { log: string }> {
  const work = mkdtempSync(join(tmpdir(), 'mie-gpu-'));
  const out = join(work, 'out.json');
  try {
    const env = gpu ? swiftShaderEnvironment() : process.env;
    let log = '';
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(DIST, script), ...args, out], { env, timeout, maxBuffer: 64 * 1024 * 1024 });
      log = `${stdout}${stderr}`;
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`${script} ${args.join(' ')} failed: ${(error as Error).message}\n${String(stdout).slice(-4000)}${String(stderr).slice(-4000)}`);
    }
    return { ...(JSON.parse(readFileSync(out, 'utf8')) as T), log };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
