export * from './gateway.entities';
export * from './coordinator.entities';
export * from './registry.entities';
