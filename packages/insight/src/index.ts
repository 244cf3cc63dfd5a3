/**
 * @mie/insight: interpretability for MIE models, in Node and in the browser. Named hook points
 * in every attention module and transformer layer (TransformerLens's names in camelCase), an
 * activation cache (`runWithCache`), activation editing (`runWithHooks`: ablation, patching), the
 * logit lens, direct logit attribution, attention rollout and head ablation scores.
 */
export { ActivationCache } from './activation-cache';
export { hookPointNames, hookPointRefs, selectHookPoints, type HookPointRef, type HookPointSelection } from './hook-points';
export { runWithCache, runWithHooks, type InsightHook, type InsightHookContext } from './run';
export { logitLens, logitLensTable, type LogitLens, type LogitLensOptions, type LensToken } from './logit-lens';
export { directLogitAttribution, type HeadAttribution, type LogitAttribution } from './attribution';
export { attentionRollout, attentionPatterns } from './rollout';
export { headAblationScores, zeroHeads, type HeadAblation, type HeadAblationScore } from './ablation';
export { lensTarget, type LensTarget } from './lens-target';
