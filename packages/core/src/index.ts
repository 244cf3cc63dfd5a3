// The globals tfjs's declarations use without referencing them (Long, EmscriptenModule) and the
// Symbol.dispose of MIE's own, for consumers whose compiler includes no @types by default
// (TypeScript 6) and checks every declaration file (skipLibCheck: false).
/// <reference types="long" preserve="true" />
/// <reference types="emscripten" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
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
export type { GpuInfo } from './gpu-backends';
export type { GemmKernel } from './simd-gemm';
export { simdPassesAvailable, wasmAdamWUpdate, wasmExpAffineRows, wasmLayerNorm, wasmLayerNormGrad, wasmRowExpStats, type AdamWScalars } from './simd-gemm';
export { registerWasmKernels } from './wasm-kernels';
export { registerFusedKernel, fusedKernelAvailable, runFusedKernel, FUSED_KERNEL_BACKENDS, type FusedKernel } from './fused-kernels';
/**
 * Where a browser loads the wasm backend's `.wasm` files from (a folder URL ending in `/`, or a
 * map of file names to URLs); by default, the page's own folder. Call before the first `setBackend`.
 */
export { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
export { environmentVariable } from './host';
export { registerPlotter, registeredPlotter, type ColorMapName, type HeatmapOptions, type Plotter } from './plotting';
export { Module, checkRank, parameter, buffer, type HookPointContext, type HookPointListener, type HookPointRunner, type ForwardHook, type ForwardHookContext, type ForwardMethods, type ForwardOutputAccess, OUTPUT_FIELD, type LoadStateDictResult, type NamedTensors, type ParameterOptions } from './module';
export { stateLayout, isPlaceholder, type StateLayout, type StateLayoutEntry, type LayoutLimits } from './construction';
export {
  BaseModel,
  registerModel,
  registeredModels,
  FORMAT_VERSION,
  CONFIG_FILE,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  DEFAULT_MAX_SHARD_SIZE,
  type SaveOptions,
  type CheckpointFiles,
  type CheckpointBuffers,
  type CheckpointHeader,
  type ModelClass,
} from './base-model';
export { writeFilesAtomically, type FileSystem, type FileContent, type WriteFilesOptions } from './atomic-files';
export {
  readSafetensors,
  writeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
  safetensorsPrefixLength,
  decodeSafetensorsEntry,
  safetensorsEntryTensor,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsContents,
  type SafetensorsEncoding,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from './safetensors';
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
  checkCallOptions,
  checkPositiveInteger,
  checkPositiveIntegers,
  checkDropout,
  checkBoolean,
  checkPositiveNumber,
  checkOneOf,
  checkFeatures,
} from './checks';
export { option, resolveOptions, requireOptions, pickOptions, type OptionSpec, type OptionSpecs, type OptionDefault, type ResolvedOptions } from './option-specs';
export { dropout } from './dropout';
export { hostValues, readSync, backendOnHost, synchronousReadsAvailable } from './readback';
export { checkAllocation, memoryStatus, setMemoryLimit, float32Bytes, type MemoryStatus } from './memory';
export {
  readSafetensorsFile,
  openRegularFile,
  readRegularFile,
  openSafetensorsFile,
  type ReadSafetensorsFileOptions,
  type RegularFile,
  type SafetensorsFile,
} from './checkpoint-files';
export { parseStrictJson, StrictJsonError, STRICT_JSON_MAX_DEPTH } from './strict-json';
export {
  MieError,
  MieConfigError,
  MieShapeError,
  MieSerializationError,
  MieBackendError,
  describeValue,
  errorMessage,
  listForMessage,
  causeMessage,
} from './errors';
export { enableFiniteChecks, checkFinite, type FiniteCheckOptions } from './check-finite';
export { MieNumericalError, MieResourceError } from './errors';
