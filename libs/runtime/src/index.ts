export * from './config';
export * from './infra';
export * from './sql';
export * from './coalesced-pass';
export * from './default-models';
export * from './observability';
export * from './stored-use-cases';
export * from './garbage';
