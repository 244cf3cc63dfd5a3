/** Runs `run` with the environment variable `name` set to `value` (removed when undefined), then restores it. */
export function withEnvironment<T>(name: string, value: string | undefined, run: () => T): T {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return run();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}
