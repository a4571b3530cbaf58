export * from './platform-metrics';
export * from './observed';
export * from './observability.module';
export * from './logging';
export * from './task-logger';
export * from './public-route';
