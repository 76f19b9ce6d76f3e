// The corpus recognisers' labelled text lines (bench/corpus/text-lines.ts, rendered with @napi-rs/canvas in
// Debian's fonts-dejavu-core) and their task metric (bench/corpus/evaluate.ts): same seed, same label and pixels;
// labels drawn from PaddleOCR's English dictionary; the tensor preprocessed as PaddleOCR's recogniser takes it
// (x/255 normalised, right-padded with zeros); greedy CTC decoding and exact-line / CER scoring by hand.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { formatTable } from "../../../bench/corpus";
import { byId, heldOutCount, loadCatalog, type CorpusModel } from "../../../bench/corpus/catalog";
import { ctcTexts, formatLines, scoreLines, type LineScores } from "../../../bench/corpus/evaluate";
import { pairedProportionDiff } from "../../../engine/analysis/stats";
import { FrontEnd, makeSamples, speechAudio, speechSource } from "../../../bench/corpus/inputs";
import { formatPeerTable, SIDES, type Cell } from "../../../bench/corpus/peer";
import { dejavuDir, FACES, NPM_DEJAVU, PRINTABLE_ASCII, renderTextLine, textOf } from "../../../bench/corpus/text-lines";
import { DataType } from "../../../engine/onnx/dtype";
import type { OutputTensor } from "../../../engine/runtime/tensors";
import { seededRandom } from "../../../engine/data/random";

const line = (seed: number) => renderTextLine(seededRandom(seed));

describe("text lines for the recognisers", () => {
  it("the same seed gives the same label and pixels; another seed another line", () => {
    const [a, b, c] = [line(7), line(7), line(8)];
    assert.equal(a.label, b.label);
    assert.deepEqual(a.data, b.data);
    assert.notDeepEqual(a.data, c.data);
  });

  it("labels are 3–25 characters of the dictionary, varied, in every face", () => {
    const dictionary = new Set(PRINTABLE_ASCII);
    const lines = Array.from({ length: 60 }, (_, i) => line(100 + i));
    for (const l of lines) {
      assert.ok(l.label.length >= 3 && l.label.length <= 25, JSON.stringify(l.label));
      assert.deepEqual([...l.label].filter((ch) => !dictionary.has(ch)), [], l.label);
      assert.equal(l.label, l.label.trim());
    }
    const all = lines.map((l) => l.label).join("");
    for (const kind of [/[a-z]/, /[A-Z]/, /[0-9]/, /[.,:;!?$%#@()\-/"[\]]/, / /]) assert.match(all, kind);
    assert.ok(new Set(lines.map((l) => l.label)).size >= 58, "labels repeat");
    assert.deepEqual(new Set(lines.map((l) => l.face)), new Set(FACES));
  });

  it("the tensor is [1,3,48,320], x/255 normalised, with ink on paper and zeros right of the crop", () => {
    for (let seed = 200; seed < 220; seed++) {
      const l = line(seed);
      assert.deepEqual(l.dims, [1, 3, 48, 320]);
      assert.equal(l.data.length, 3 * 48 * 320);
      assert.ok(l.contentWidth >= 8 && l.contentWidth <= 320, `content width ${l.contentWidth}`);
      let [lo, hi] = [Infinity, -Infinity];
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < 48; y++) {
          for (let x = 0; x < 320; x++) {
            const v = l.data[(ch * 48 + y) * 320 + x]!;
            if (x >= l.contentWidth) {
              assert.equal(v, 0, `padding at channel ${ch} (${x}, ${y})`);
              continue;
            }
            const byte = (v * 0.5 + 0.5) * 255;
            assert.ok(Math.abs(byte - Math.round(byte)) < 1e-3 && byte >= 0 && byte <= 255, `pixel ${v} is not (b/255 − 0.5)/0.5`);
            [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
          }
        }
      }
      assert.ok(hi - lo > 0.6, `line ${seed} has no contrast: ${lo}..${hi}`);
    }
  });

  it("draws the label it is given, wider for longer text; mean/std apply", () => {
    const short = renderTextLine(seededRandom(5), {}, "abc");
    const long = renderTextLine(seededRandom(5), {}, "A much longer label, 25ch");
    assert.equal(short.label, "abc");
    assert.ok(long.contentWidth > 2 * short.contentWidth, `${long.contentWidth} vs ${short.contentWidth}`);
    const plain = renderTextLine(seededRandom(5), { mean: [0, 0, 0], std: [1, 1, 1] }, "abc");
    let worst = 0;
    plain.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(short.data[i]! - (i % 320 < short.contentWidth ? (v - 0.5) / 0.5 : 0)))));
    assert.ok(worst < 1e-6, `(x/255 − 0.5)/0.5 off by ${worst}`);
  });

  it("textOf is seeded", () => {
    assert.equal(textOf(seededRandom(3)), textOf(seededRandom(3)));
  });

  /** Runs `fn` with PTQ_DEJAVU_DIR set to `dir`, then puts the variable back as it was. */
  const withDejavuDir = (dir: string, fn: () => void) => {
    const saved = process.env.PTQ_DEJAVU_DIR;
    process.env.PTQ_DEJAVU_DIR = dir;
    try {
      fn();
    } finally {
      if (saved === undefined) delete process.env.PTQ_DEJAVU_DIR;
      else process.env.PTQ_DEJAVU_DIR = saved;
    }
  };

  it("a missing font names the file and the Debian package", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-no-fonts-"));
    try {
      withDejavuDir(dir, () =>
        assert.throws(() => line(1), (e: Error) => e.message.includes(path.join(dir, "DejaVuSans.ttf")) && /apt-get install fonts-dejavu-core/.test(e.message)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("without Debian's fonts the lines are drawn in the npm package's DejaVu files", () => {
    const none = mkdtempSync(path.join(os.tmpdir(), "ptq-no-fonts-"));
    try {
      assert.equal(dejavuDir({ PTQ_DEJAVU_DIR: "/x" }, none), "/x", "PTQ_DEJAVU_DIR first");
      assert.equal(dejavuDir({}, none), NPM_DEJAVU, "a folder without the faces is passed over");
      assert.equal(dejavuDir({}, NPM_DEJAVU), NPM_DEJAVU);
    } finally {
      rmSync(none, { recursive: true, force: true });
    }
    withDejavuDir(NPM_DEJAVU, () => {
      const l = renderTextLine(seededRandom(7), {}, "Invoice 42: $19.99");
      assert.ok(l.contentWidth > 40, `a drawn line: ${l.contentWidth} px wide`);
      assert.ok(l.data.some((v) => v < 0) && l.data.some((v) => v > 0.5), "ink and paper");
    });
  });

  it("the corpus' text-line inputs are these lines, labelled, seeded", async () => {
    const m: CorpusModel = {
      ...({} as CorpusModel),
      id: "rec",
      inputs: [{ name: "x", shape: [1, 3, 48, 320], layout: "NCHW", generate: { kind: "image", style: "text-line", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } }],
    };
    const fe = new FrontEnd({ packages: {}, models: [], subset: [], photos: {} });
    const [a, b] = [await makeSamples(m, 3, 1, fe), await makeSamples(m, 3, 1, fe)];
    const held = await makeSamples(m, 3, 1000, fe);
    await fe.dispose();
    assert.deepEqual(a.map((s) => s.x!.label), b.map((s) => s.x!.label));
    for (const s of a) assert.equal(typeof s.x!.label, "string");
    assert.deepEqual(a[0]!.x!.data, b[0]!.x!.data);
    assert.notDeepEqual(a.map((s) => s.x!.label), held.map((s) => s.x!.label));
    await assert.rejects(makeSamples({ ...m, inputs: [{ ...m.inputs[0]!, layout: "NHWC", shape: [1, 48, 320, 3] }] }, 1, 1, fe), /"text-line" style makes \[1, 3, H, W\] NCHW inputs, not NHWC \[1, 48, 320, 3\]/);
  });
});

describe("the recognisers' task metric", () => {
  it("both recognisers are scored on 512 labelled lines; v4, without a dictionary of its own, reads v3's and fetches it", () => {
    const catalog = loadCatalog();
    for (const id of ["ppocr-v3-rec-en", "ppocr-v4-rec-en"]) {
      const m = byId(catalog, id);
      assert.equal(m.check?.kind, "ctc", id);
      assert.equal(heldOutCount(m, 8), 512, id);
      assert.equal(heldOutCount(m, 600), 600, id);
      assert.equal(m.inputs[0]!.generate.kind === "image" && m.inputs[0]!.generate.style, "text-line", id);
    }
    const v4 = byId(catalog, "ppocr-v4-rec-en");
    assert.deepEqual(v4.check, { output: "softmax_2.tmp_0", kind: "ctc", dictionaryOf: "ppocr-v3-rec-en" });
    assert.ok(v4.needs?.includes("ppocr-v3-rec-en"));
    assert.equal(heldOutCount(byId(catalog, "blazeface-front"), 8), 8);
  });

  it("greedy CTC: argmax per frame, repeats collapsed, blanks dropped", () => {
    const chars = ["", "a", "b", " "];
    // frames: a a blank a b b space b → "aab b"
    const frames = [1, 1, 0, 1, 2, 2, 3, 2];
    const data = new Float32Array(frames.length * 4);
    frames.forEach((c, t) => (data[t * 4 + c] = 1));
    const t: OutputTensor = { data, dims: [1, frames.length, 4], type: "float32", dtype: DataType.FLOAT };
    assert.deepEqual(ctcTexts(t, chars), ["aab b"]);
  });

  it("exact lines ignore a leading or trailing space; CER is edits over label characters", () => {
    const r = scoreLines(["hello", "world", "abc"], [" hello", "word", "abc "]);
    assert.equal(r.exact, 2 / 3);
    assert.equal(r.cer, 1 / 13);
    assert.deepEqual(r.correct, [true, false, true]);
    assert.throws(() => scoreLines(["a"], []), /0 lines read but 1 labels/);
  });

  it("the difference from FP32 is paired on the same lines: discordant counts, interval and McNemar p", () => {
    // 100 lines: FP32 reads 96, the candidate 94; 6 only FP32 reads, 4 only the candidate.
    const labels = Array.from({ length: 100 }, (_, i) => `line ${i}`);
    const fp32 = labels.map((l, i) => (i < 4 ? "x" : l));
    const ours = labels.map((l, i) => ((i >= 4 && i < 10) ? "y" : l));
    const [a, b] = [scoreLines(labels, ours), scoreLines(labels, fp32)];
    assert.equal(a.exact, 0.94);
    assert.equal(b.exact, 0.96);
    const d = pairedProportionDiff(b.correct, a.correct);
    assert.deepEqual([d.onlyA, d.onlyB], [6, 4]);
    const lines: LineScores = {
      lines: 100, exact: 0.94, exactFp32: 0.96, cer: 0.01, cerFp32: 0.008, sameAsFp32: 0.9,
      vsFp32: { onlyFp32: 6, onlyThis: 4, lo: d.diff.lo, hi: d.diff.hi, pValue: d.pValue },
    };
    // Var = (10 − 4/100) / 100² → SE 0.0316: −2.0 ± 6.2 pp; McNemar on 6 vs 4: p = 0.754.
    assert.equal(formatLines(lines), "lines 94.0 % (FP32 96.0 %; −2.0 pp [−8.2, +4.2], 6 vs 4 lines, p 0.75), CER 1.0 % (FP32 0.8 %)");
  });

  it("the bench's tables show lines and CER beside FP32's", () => {
    const lines: LineScores = { lines: 128, exact: 0.93, exactFp32: 0.953125, cer: 0.012, cerFp32: 0.004, sameAsFp32: 0.95 };
    assert.equal(formatLines(lines), "lines 93.0 % (FP32 95.3 %), CER 1.2 % (FP32 0.4 %)");
    const table = formatTable([{ model: "rec", mode: "static", works: "yes", seconds: 1, command: "", agreement: 0.9, lines }]);
    assert.match(table, /\| 90\.0 % \| lines 93\.0 % \(FP32 95\.3 %\), CER 1\.2 % \(FP32 0\.4 %\) \|/);
    const cell: Cell = { works: true, agreement: 0.9, lines, sqnrDb: 7, sizeRatio: 0.3, notes: [] };
    const peer = formatPeerTable([{ model: "rec", cells: Object.fromEntries(SIDES.map((s) => [s, cell])) as Record<(typeof SIDES)[number], Cell> }]);
    assert.match(peer, /90\.0 % · lines 93\.0 % \(FP32 95\.3 %\), CER 1\.2 % \(FP32 0\.4 %\) · 7\.0 dB/);
  });
});

it("corpus speech: the same seed speaks the same audio, peak 0.3 of full scale, whichever source this machine has", () => {
  const a = speechAudio(16000, seededRandom(5), 32767, "hey jarvis");
  const b = speechAudio(16000, seededRandom(5), 32767, "hey jarvis");
  assert.equal(a.length, 16000);
  assert.deepEqual(a, b);
  let peak = 0;
  for (const v of a) peak = Math.max(peak, Math.abs(v));
  assert.ok(peak > 0.29 * 32767 && peak < 0.31 * 32767, `peak ${peak}`);
  assert.match(speechSource(), /^espeak-ng|^synthetic/);
});
