export { OnnxGraphBuilder, attr, floatTensor, int64Tensor } from './builder';
export type { AttrInput, BuilderOptions } from './builder';
export type { AttrValue, Dim, ElemType, OnnxTensor } from './proto';
export { decodeModel } from './decode';
export type { DecodedModel } from './decode';
export type { ModelDef, NodeDef, ValueInfoDef } from './proto';
