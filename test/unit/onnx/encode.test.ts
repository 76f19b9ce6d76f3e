import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, StringStringEntryProtoSchema } from "onnx-buf";
import { DataType, Model, makeTensor } from "../../../engine/onnx";
import { encodeModel, encodeModelPieces } from "../../../engine/onnx/encode";
import { bigWeights, smallMlp, withIf } from "./helpers";

test("encodeModel writes exactly toBinary's bytes, big weights or not", () => {
  const models = [smallMlp(), withIf(), bigWeights(100), bigWeights(40000)];
  const rich = bigWeights(70000);
  const g = rich.graph;
  g.initializer[0]!.docString = "after raw_data";
  g.initializer[0]!.metadataProps.push(create(StringStringEntryProtoSchema, { key: "k", value: "v" }));
  g.initializer.push(makeTensor("typed", DataType.INT64, [2], [1n, 2n], { raw: false }));
  g.initializer.push(makeTensor("big16", DataType.FLOAT16, [50000], new Float32Array(50000).fill(0.5)));
  g.docString = "graph doc";
  rich.proto.docString = "model doc";
  rich.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key: "a", value: "b" }));
  models.push(rich);
  // Unknown fields (from a newer ONNX) survive and keep their place.
  const withUnknown = Model.fromBytes(Uint8Array.from([...bigWeights(20000).toBytes(), 0xf8, 0x07, 0x01]), { skipValidation: true });
  models.push(withUnknown);
  for (const m of models) {
    const expected = toBinary(ModelProtoSchema, m.proto);
    assert.deepEqual(encodeModel(m.proto), expected);
    assert.deepEqual(Buffer.concat(encodeModelPieces(m.proto)), Buffer.from(expected));
  }
  assert.equal(withUnknown.proto.$unknown?.length, 1);
});
