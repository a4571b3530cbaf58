export * from './safetensors';
export * from './bundle';
export * from './onnx';
export * from './manifest';
export * from './classifier';
export { buildInferenceGraph, buildTrainStepGraph } from './classifier-graphs';
export * from './package-files';
export * from './reference';
export * from './trainer';
