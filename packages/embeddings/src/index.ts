/**
 * @mie/embeddings: token embeddings and the Vision Transformer's patch embedding for MIE
 * transformers, on the one tfjs instance of @mie/core.
 */
export { TokenEmbedding, type TokenEmbeddingOptions, type TokenEmbeddingConfig } from './token-embedding';
export { PatchEmbedding, PatchProjection, checkImages, type PatchEmbeddingOptions, type PatchEmbeddingConfig } from './patch-embedding';
