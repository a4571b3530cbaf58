export { buildTrainStep, MAX_OPSET, MIN_OPSET, TRAIN_STEP_OPSET } from './train-step';
export type { HyperParameterSpec, StateSpec, TensorSpec, TrainableModel, TrainStepOptions } from './train-step';
export { LOSSES } from './losses';
export type { LossKind } from './losses';
export { ADAM_STEP, OPTIMIZERS, OPTIMIZER_HYPER_PARAMETERS } from './optimizers';
export type { OptimizerKind } from './optimizers';
export { SUPPORTED_OPS, UnsupportedModelError } from './op-rules';
