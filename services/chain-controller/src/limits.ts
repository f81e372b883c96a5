// The controller's limits, each defined here once. A request past one is refused with an
// error naming the field: INVALID_ARGUMENT for a spec that is too big, RESOURCE_EXHAUSTED for
// the controller's capacity, and a ServiceChain status condition for a resource.

/**
 * Hops in one chain (spec.hops). The ServiceChain CRD's `spec.hops.maxItems`
 * (charts/flowline/templates/servicechain-crd.yaml) is this number; a test compares them.
 */
export const MAX_HOPS = 16;

/** Chains the controller keeps (CreateChain beyond it: RESOURCE_EXHAUSTED naming `chains`). */
export const MAX_CHAINS = 256;

/** WatchChains streams open at once (another: RESOURCE_EXHAUSTED naming `watch_streams`). */
export const MAX_WATCH_STREAMS = 32;
