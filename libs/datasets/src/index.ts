export * from './use-case';
export * from './csv';
export * from './prng';
export * from './labeled-data';
export * from './partition';
export * from './site-data';
export * from './paths';
