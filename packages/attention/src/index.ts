/**
 * MIE attention: scaled dot-product, multi-head, simple, grouped-query and ALiBi attention, masks and KV caches.
 * The modules of this package arrive with the milestones that follow the foundation; today it
 * exposes the package name and builds on the one tfjs instance of @mie/core.
 */
export const PACKAGE_NAME = '@mie/attention';
