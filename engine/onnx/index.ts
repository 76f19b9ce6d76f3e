// The public entry of engine/onnx: model load/save, tensor codecs, graph editing. Pure TypeScript with no
// onnxruntime import, so the extension host can use it too (the runtime lives in engine/runtime).
export {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProtoSchema,
  TensorShapeProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
} from "onnx-buf";
export type {
  AttributeProto,
  FunctionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  OperatorSetIdProto,
  StringStringEntryProto,
  TensorProto,
  TensorShapeProto,
  TypeProto,
  ValueInfoProto,
} from "onnx-buf";
export { create, clone, equals, fromBinary, toBinary } from "@bufbuild/protobuf";

export { OnnxError } from "./errors";
export { DataType, DataType as TensorProto_DataType, allDTypes, dtypeByName, dtypeInfo, dtypeName, elementCount, storageBytes } from "./dtype";
export type { DTypeInfo } from "./dtype";
export * from "./floatbits";
export {
  makeTensor,
  packBits,
  readTensor,
  tensorRawBytes,
  tensorStorage,
  tensorToFloat32,
  unpackBits,
} from "./tensor";
export type { MakeTensorOptions, TensorData, TensorInput, TensorValue } from "./tensor";
export {
  AttrType,
  attr,
  attrFloat,
  attrFloats,
  attrInt,
  attrInts,
  attrString,
  getAttribute,
  irVersionForOpset,
  makeGraph,
  makeModel,
  makeNode,
  makeValueInfo,
  setAttribute,
  valueInfoTensor,
} from "./proto";
export type { Dim, MakeGraphOptions, MakeModelOptions, MakeNodeOptions } from "./proto";
export {
  addNodes,
  allTensors,
  checkGraph,
  constantNodeTensor,
  constantsToInitializers,
  constantValue,
  consumers,
  forEachGraph,
  getInitializer,
  initializerMap,
  nodeInputs,
  nodeLabel,
  outerScopeInputs,
  producers,
  removeNodes,
  replaceNode,
  replaceUses,
  subgraphs,
  topologicalSort,
  uniqueName,
  usedNames,
} from "./graph";
export { externalRef, isExternal, readExternalBytes } from "./external";
export type { ExternalRef } from "./external";
export { Model, loadModel } from "./model";
export type { FromBytesOptions, SaveOptions } from "./model";
export type { ExternalDataOptions } from "./writer";
export { checkTensorData, describeNonOnnx, locateWireError, validateModel } from "./validate";
export { upgradeOpset, MAX_UPGRADE_OPSET } from "./upgrade";
export { formatSummary, summarize } from "./summary";
export type { DtypeParams, ModelSummary, ValueSummary } from "./summary";
export { inferModelShapes, inferShapes, modelOpset, type InferredTensor, type ShapeInference } from "./shape-infer";
