export { Allocator, type AllocatorOptions, type AllocationSummary } from './allocator.js'
export { planPlacement, type PlacementInput, type Plan, type WorkerLease, type NodeLease } from './placement.js'
