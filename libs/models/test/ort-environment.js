/**
 * Jest environment for specs that run onnxruntime-node.
 *
 * Jest evaluates tests in a separate V8 context, but the onnxruntime native
 * binding creates output typed arrays in the main context; onnxruntime-common
 * (loaded inside the test context) then rejects them with
 * "A float32 tensor's data must be type of Float32Array". Sharing the typed
 * array constructors of the main context makes both sides agree.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
  'Float32Array', 'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array',
  'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array',
];

class OrtTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtTestEnvironment;
