/**
 * @mie/embeddings: token embeddings for MIE transformers, on the one tfjs instance of @mie/core.
 */
export { TokenEmbedding, type TokenEmbeddingOptions, type TokenEmbeddingConfig } from './token-embedding';
