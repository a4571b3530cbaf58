import { collectGarbage } from './garbage';

describe('collectGarbage', () => {
  it('collects a released buffer at once', async () => {
    let held: Uint8Array | null = new Uint8Array(64 * 2 ** 20).fill(1);
    const ref = new WeakRef(held);
    held = null;
    // A new turn of the event loop: a WeakRef keeps its target alive until the end of the turn that made it.
    await new Promise((resolve) => setImmediate(resolve));
    expect(held).toBeNull();
    expect(collectGarbage()).toBe(true);
    expect(ref.deref()).toBeUndefined();
  });
});
