/**
 * MIE layers: LinearLayer, LayerNorm, RMSNorm, activations and feed-forward networks.
 * The modules of this package arrive with the milestones that follow the foundation; today it
 * exposes the package name and builds on the one tfjs instance of @mie/core.
 */
export const PACKAGE_NAME = '@mie/layers';
