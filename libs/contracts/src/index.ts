import 'reflect-metadata';
export * from './messages';
export * from './task-spec';
export * from './payloads';
export * from './validate';
