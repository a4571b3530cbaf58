export { OnnxGraphBuilder, attr, floatTensor, int64Tensor } from './builder';
export type { AttrInput, BuilderOptions } from './builder';
export type { AttrValue, Dim, ElemType, OnnxTensor } from './proto';
