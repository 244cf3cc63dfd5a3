/** The registry of model classes that `BaseModel.load` rebuilds by the name stored in `config.json`. */
import type { BaseModel } from './base-model';
import { MieConfigError } from './errors';

/** A model class that can be rebuilt from its config. */
export type ModelClass<M extends BaseModel = BaseModel> = new (config: never) => M;

const registry = new Map<string, ModelClass>();
const names = new Map<ModelClass, string>();

/**
 * Registers a model class so that `BaseModel.load` can rebuild it from the name stored in
 * `config.json`. Call it once, next to the class definition. `name` defaults to the class name;
 * pass it explicitly in code that a browser bundle may carry: bundlers rename classes to avoid
 * collisions (esbuild turns `Model` into `Model2`) and minifiers mangle them, which would change
 * the name a checkpoint is saved under and break loading it elsewhere.
 */
export function registerModel(cls: ModelClass, name: string = cls.name): void {
  if (!name) throw new MieConfigError('registerModel: the class needs a name. Received: an anonymous class.');
  const existing = registry.get(name);
  if (existing && existing !== cls) {
    throw new MieConfigError(`registerModel: the name "${name}" is already registered by another class.`);
  }
  registry.set(name, cls);
  names.set(cls, name);
}

/** The names of every registered model class. */
export function registeredModels(): string[] {
  return [...registry.keys()].sort();
}

/** The class registered under `name`, if any (a Map: `"constructor"` or `"__proto__"` are plain names). */
export function registeredClass(name: string): ModelClass | undefined {
  return registry.get(name);
}

/** The name `cls` was registered under, if any. */
export function registeredName(cls: ModelClass): string | undefined {
  return names.get(cls);
}
