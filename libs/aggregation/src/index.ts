export * from './weights';
export * from './fedavg';
