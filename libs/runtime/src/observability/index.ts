export * from './platform-metrics';
export * from './observed';
export * from './observability.module';
