/**
 * @mie/core: the one tfjs instance (`tf`), backend selection, `Module` and `BaseModel`,
 * safetensors checkpoints, initialisers, seeded randomness and the typed errors.
 */
export { tf } from './tfjs';
export {
  setBackend,
  ready,
  getDevice,
  backendFromEnvironment,
  setModuleLoader,
  BACKEND_CHOICES,
  type BackendChoice,
  type DeviceInfo,
  type ModuleLoader,
} from './backend';
export { registerWasmKernels } from './wasm-kernels';
export { Module, checkRank, parameter, type ForwardHook, type LoadStateDictResult, type NamedTensors } from './module';
export {
  BaseModel,
  registerModel,
  registeredModels,
  FORMAT_VERSION,
  CONFIG_FILE,
  WEIGHTS_FILE,
  type CheckpointBuffers,
  type CheckpointHeader,
  type ModelClass,
} from './base-model';
export { writeFilesAtomically, type FileSystem } from './atomic-files';
export { readSafetensors, writeSafetensors } from './safetensors';
export {
  INIT_TYPES,
  computeFans,
  initialize,
  checkInitType,
  kaimingUniform,
  kaimingNormal,
  xavierUniform,
  xavierNormal,
  uniform,
  normal,
  type InitType,
} from './init';
export { setSeed, clearSeed, nextSeed, seededRandom } from './random';
export {
  checkOptions,
  checkPositiveInteger,
  checkPositiveIntegers,
  checkDropout,
  checkBoolean,
  checkPositiveNumber,
  checkOneOf,
  checkFeatures,
} from './checks';
export { dropout } from './dropout';
export {
  MieError,
  MieConfigError,
  MieShapeError,
  MieSerializationError,
  MieBackendError,
  describeValue,
  errorMessage,
} from './errors';
export { enableFiniteChecks, checkFinite, type FiniteCheckOptions } from './check-finite';
export { MieNumericalError } from './errors';
